//go:build linux

package input

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkLiveWorkers measures the whole sip_exporter process, with its
// shipped defaults, capturing SIP alone at a high rate with 1 and with 2
// capture workers (--capture.workers): the SIP of BenchmarkLiveMediaMix's
// mix (an INVITE or its 200 OK per packet, each call its own Call-ID)
// between 1,000 UAs, a flow each, and one server, sent by tcpreplay into
// a veth pair as there (see [liveBench]). It reports the CPU the process
// used per packet (utime + stime from /proc/PID/stat while the traffic is
// sent and 2.5 s after) and logs the packets each worker read, the kernel
// drops and the messages the merge's queues had no room for. It needs
// root and tcpreplay; SXWORK_PACKETS and SXWORK_PPS set the packets sent
// (default 3,000,000) and their rate (default 300,000/s), SXWORK_WORKERS
// the worker counts (default "1,2"). Run it with -benchtime 1x.
func BenchmarkLiveWorkers(b *testing.B) {
	packets, pps := envInt(b, "SXWORK_PACKETS", 3_000_000), envInt(b, "SXWORK_PPS", 300_000)
	counts := []int{1, 2}
	if v := os.Getenv("SXWORK_WORKERS"); v != "" {
		counts = counts[:0]
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > MaxWorkers {
				b.Fatalf("SXWORK_WORKERS=%q: want worker counts 1 to %d, comma-separated", v, MaxWorkers)
			}
			counts = append(counts, n)
		}
	}
	lb := newLiveBench(b, "sxwrk")
	const perFile, flows = 100_000, 1000
	file := filepath.Join(lb.dir, "sip-flows.pcap")
	writeMediaMix(b, file, 20*perFile, true, flows)
	b.ResetTimer()
	for b.Loop() {
		for _, n := range counts {
			r := lb.run(b, []string{"--capture.workers=" + strconv.Itoa(n)}, file, perFile, packets, pps)
			seen := metricSum(r.metrics, "sip_exporter_packets_received_total")
			dropped := metricSum(r.metrics, "sip_exporter_packets_dropped_total", `reason="kernel"`)
			queueFull := metricSum(r.metrics, "sip_exporter_messages_dropped_total", `reason="queue_full"`)
			split := make([]string, n)
			for w := range n {
				split[w] = fmt.Sprintf("%.0f", metricSum(r.metrics, "sip_exporter_capture_worker_packets_total", `worker="`+strconv.Itoa(w)+`"`))
			}
			us := float64(r.ticks) * 1e6 / 100 / float64(packets) // USER_HZ is 100
			b.ReportMetric(us, fmt.Sprintf("w%d-cpu-µs/pkt", n))
			b.Logf("%d workers: %d packets sent in %v, %d ticks of CPU: %.3f CPU-µs per packet; %.0f read (per worker %s), %.0f kernel drops, %.0f messages dropped with a full merge queue; %s",
				n, packets, r.elapsed.Round(1e6), r.ticks, us, seen, strings.Join(split, " / "), dropped, queueFull, responses(r.metrics))
		}
	}
}
