package main

import (
	"os"
	"testing"
)

// TestPackageConfigExample: the example configuration that the .deb and
// .rpm install as /etc/sip_exporter/config.yml is a valid --config.file
// and defines peers (.ci/package.sh runs the installed binary on it too).
func TestPackageConfigExample(t *testing.T) {
	data, err := os.ReadFile("../../deploy/package/config.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		t.Fatalf("deploy/package/config.yml: %v", err)
	}
	if len(cfg.Peers) == 0 {
		t.Error("deploy/package/config.yml: no example peers")
	}
}
