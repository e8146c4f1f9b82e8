package main

import (
	"bufio"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
)

// corpusDir holds public captures with counts made by Wireshark; CI clones
// the repository with shared/ beside it.
const corpusDir = "../../../shared/corpus"

// requireCorpus returns the expected-count files of the corpus, skipping
// when it is absent outside CI.
func requireCorpus(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.expected.tsv"))
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no corpus at %s", corpusDir)
		}
		t.Skipf("no corpus at %s (shared/ is not beside the repository)", corpusDir)
	}
	return files
}

// readExpected reads a corpus .expected.tsv into counts per "code method",
// methods outside collector.Methods folded into OTHER.
func readExpected(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]uint64{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header: code method reason count
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 4 {
			t.Fatalf("%s: bad row %q", path, sc.Text())
		}
		n, err := strconv.ParseUint(cols[3], 10, 64)
		if err != nil {
			t.Fatalf("%s: bad count in %q", path, sc.Text())
		}
		want[cols[0]+" "+collector.MethodOf([]byte(cols[1])).String()] += n
	}
	return want
}

// TestCorpus runs every capture of the shared corpus through the same
// pipeline as `report` and compares the counts per (code, method) with
// Wireshark's.
func TestCorpus(t *testing.T) {
	for _, exp := range requireCorpus(t) {
		capFile := strings.TrimSuffix(exp, ".expected.tsv")
		t.Run(filepath.Base(capFile), func(t *testing.T) {
			want := readExpected(t, exp)
			p, _ := reportOf(t, capFile)
			got := countsOf(p)
			for _, k := range sortedUnion(maps.Keys(want), maps.Keys(got)) {
				if got[k] != want[k] {
					t.Errorf("%s: got %d, want %d", k, got[k], want[k])
				}
			}
		})
	}
}

// testWorkers is how many workers the tests' report pipelines read a
// plain pcap file with: more than CI's two cores, so that the sharding of
// packets between workers and the merge back into file order are what the
// corpus checks against Wireshark (TestCorpusWorkers compares with one).
const testWorkers = 3

// reportOf reads capture files through the report pipeline.
func reportOf(t *testing.T, files ...string) (*pipeline.Pipeline, *decode.Stats) {
	t.Helper()
	p, err := pipeline.New(defaultPipelineConfig())
	if err != nil {
		t.Fatal(err)
	}
	stats := new(decode.Stats)
	if err := readFiles(p, files, testWorkers, stats, func(err error) { t.Log(err) }); err != nil {
		t.Fatal(err)
	}
	return p, stats
}

// countsOf returns the response counts of the capture node per "code
// method".
func countsOf(p *pipeline.Pipeline) map[string]uint64 { return countsOfNode(p.SourceNode("").Node()) }

// codeMethod is the key of count maps: "486 INVITE".
func codeMethod(code int, m collector.Method) string { return strconv.Itoa(code) + " " + m.String() }

// captureStats is the counters type the pipeline reads files into.
type captureStats = decode.Stats

// TestCorpusTotals compares the total responses and requests of every
// corpus capture with the sip_responses and sip_requests columns of
// PROVENANCE.tsv, also made with Wireshark.
func TestCorpusTotals(t *testing.T) {
	requireCorpus(t)
	f, err := os.Open(filepath.Join(corpusDir, "PROVENANCE.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	head := strings.Split(sc.Text(), "\t")
	col := func(name string) int {
		for i, h := range head {
			if h == name {
				return i
			}
		}
		t.Fatalf("PROVENANCE.tsv has no column %q", name)
		return 0
	}
	fileCol, respCol, reqCol := col("file"), col("sip_responses"), col("sip_requests")
	for sc.Scan() {
		row := strings.Split(sc.Text(), "\t")
		t.Run(row[fileCol], func(t *testing.T) {
			p, _ := reportOf(t, filepath.Join(corpusDir, row[fileCol]))
			var responses, requests uint64
			p.SourceNode("").Node().EachResponse(func(_ int, _ collector.Method, n uint64) { responses += n })
			for m := range collector.Methods {
				requests += p.SourceNode("").Node().Request(collector.Method(m))
			}
			if got, want := strconv.FormatUint(responses, 10), row[respCol]; got != want {
				t.Errorf("responses %s, want %s", got, want)
			}
			if got, want := strconv.FormatUint(requests, 10), row[reqCol]; got != want {
				t.Errorf("requests %s, want %s", got, want)
			}
		})
	}
}
