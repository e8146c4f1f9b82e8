package main

import (
	_ "embed"
	"strings"
)

// versionFile is the version of the next release, the one place that holds
// it: the release build (.goreleaser.yaml) reads it for snapshots, and the
// top section of README's changelog must name it (TestVersionChangelog).
//
//go:embed VERSION
var versionFile string

// releaseVersion is reported when the build sets no version with
// -ldflags "-X github.com/prometheus/common/version.Version=...".
var releaseVersion = strings.TrimSpace(versionFile)
