package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVersionChangelog: the version the binary reports when the build sets
// none (cmd/sip_exporter/VERSION, which the release build reads too) is the
// release that the top section of README's changelog names.
func TestVersionChangelog(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(releaseVersion) {
		t.Fatalf("VERSION %q: want MAJOR.MINOR.PATCH", releaseVersion)
	}
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	section := regexp.MustCompile(`^## (\S+) / (\d{4}-\d{2}-\d{2})$`)
	inChangelog := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "## Changelog" {
			inChangelog = true
			continue
		}
		if !inChangelog || !strings.HasPrefix(line, "## ") {
			continue
		}
		m := section.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("README changelog: first section %q: want \"## X.Y.Z / YYYY-MM-DD\"", line)
		}
		if m[1] != releaseVersion {
			t.Errorf("README changelog names %s, VERSION says %s: make them agree", m[1], releaseVersion)
		}
		return
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatal("README.md: no \"## Changelog\" section with a release under it")
}

// TestVersionBuildInfo builds the binary twice and reads its version back
// from --version and from sip_exporter_build_info: with the ldflags of the
// release build (.goreleaser.yaml), every field is the one given; with a
// plain go build in a git checkout, the version is VERSION's and the
// revision is the checkout's (Go's embedded VCS information; -buildvcs=true
// is passed because GOFLAGS may turn it off).
func TestVersionBuildInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const pkg = "github.com/prometheus/common/version."
	release := map[string]string{
		"Version":   "9.8.7",
		"Revision":  "0123456789abcdef0123456789abcdef01234567",
		"Branch":    "release-9.8",
		"BuildUser": "goreleaser",
		"BuildDate": "2026-12-01T12:00:00Z",
	}
	var ldflags []string
	for k, v := range release {
		ldflags = append(ldflags, "-X", pkg+k+"="+v)
	}

	t.Run("release", func(t *testing.T) {
		bin := buildWith(t, "-ldflags="+strings.Join(ldflags, " "))
		out := versionOf(t, bin)
		for _, want := range []string{
			"sip_exporter, version 9.8.7 (branch: release-9.8, revision: 0123456789abcdef0123456789abcdef01234567)",
			"build user:       goreleaser",
			"build date:       2026-12-01T12:00:00Z",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("--version lacks %q:\n%s", want, out)
			}
		}
		checkBuildInfo(t, bin, map[string]string{"version": "9.8.7", "revision": release["Revision"], "branch": "release-9.8"})
	})

	t.Run("go build", func(t *testing.T) {
		bin := buildWith(t, "-buildvcs=true")
		out := versionOf(t, bin)
		if !strings.Contains(out, "sip_exporter, version "+releaseVersion+" ") {
			t.Errorf("--version: want version %s (VERSION):\n%s", releaseVersion, out)
		}
		head, err := checkoutRevision()
		if err != nil {
			t.Logf("revision not checked: %v", err)
			checkBuildInfo(t, bin, map[string]string{"version": releaseVersion})
			return
		}
		rev := regexp.MustCompile(`revision: (\S+)\)`).FindStringSubmatch(out)
		if rev == nil || (rev[1] != head && rev[1] != head+"-modified") {
			t.Errorf("--version: want revision %s (or %[1]s-modified), the checkout's:\n%s", head, out)
			return
		}
		checkBuildInfo(t, bin, map[string]string{"version": releaseVersion, "revision": rev[1]})
	})
}

// checkoutRevision returns HEAD of the git checkout holding this package,
// or why Go cannot embed it: no git, or not a checkout whose .git is a
// directory (Go does not read the .git file of a worktree or submodule).
func checkoutRevision() (string, error) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", errors.New("not in a git checkout (or no git)")
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		return "", errors.New("the checkout's .git is not a directory (a worktree): Go embeds no revision")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", errors.New("git rev-parse HEAD failed")
	}
	return strings.TrimSpace(string(head)), nil
}

// buildWith builds this package with extra go build flags into a temporary
// directory and returns the binary's path.
func buildWith(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), program)
	args := append([]string{"build", "-o", bin}, flags...)
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %v: %v\n%s", flags, err, out)
	}
	return bin
}

// versionOf runs bin --version and returns what it printed.
func versionOf(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	return string(out)
}

// checkBuildInfo serves the demo capture with bin and checks the labels of
// sip_exporter_build_info.
func checkBuildInfo(t *testing.T, bin string, want map[string]string) {
	t.Helper()
	e := startExporter(t, bin, "--capture.pcap-file="+demoCapture)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, mfs, err := e.scrape()
		if err == nil {
			if v, ok := gaugeValue(mfs, "sip_exporter_build_info", want); ok && v == 1 {
				return
			}
			if mf := mfs["sip_exporter_build_info"]; mf != nil {
				t.Fatalf("sip_exporter_build_info %v: want labels %v", mf.GetMetric(), want)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sip_exporter_build_info: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
