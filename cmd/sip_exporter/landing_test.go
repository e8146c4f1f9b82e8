package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
)

// TestLandingPageLinks: every link of the landing page answers 200 (the
// metrics), and it links to no pprof page, which the server does not
// serve, nor off the server; also under another --web.telemetry-path.
func TestLandingPageLinks(t *testing.T) {
	for _, path := range []string{"/metrics", "/sip/metrics"} {
		t.Run(path, func(t *testing.T) {
			mux, err := newMux(&options{metricsPath: path}, prometheus.NewRegistry(), nil, promslog.NewNopLogger())
			if err != nil {
				t.Fatal(err)
			}
			get := func(target string, status int) string {
				t.Helper()
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
				if rec.Code != status {
					t.Errorf("GET %s: %d, want %d", target, rec.Code, status)
				}
				return rec.Body.String()
			}
			page := get("/", http.StatusOK)
			links := regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1)
			if len(links) == 0 {
				t.Fatalf("no links on the landing page:\n%s", page)
			}
			for _, l := range links {
				href := l[1]
				if !strings.HasPrefix(href, "/") {
					t.Errorf("link %q leaves the server", href)
					continue
				}
				get(href, http.StatusOK)
			}
			if strings.Contains(page, "debug/pprof") {
				t.Errorf("landing page mentions pprof, which is not served:\n%s", page)
			}
			get("/debug/pprof/heap", http.StatusNotFound)
		})
	}
}
