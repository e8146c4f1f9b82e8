// Package dashboards embeds the Grafana dashboards of sip_exporter, the
// JSON files of this directory, and reads the parts of them that its tests
// and the end-to-end test against a real Prometheus
// (cmd/sip_exporter/e2e_prometheus_test.go) check: panels, their PromQL
// queries and the template variables.
//
// Its tests also check the Prometheus rules of deploy/prometheus (promtool
// check and test, naming, thresholds table) and the docker-compose demo of
// deploy.
package dashboards

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Dashboard is the part of a Grafana dashboard the tests read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel; rows hold their panels inline when collapsed.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *DatasourceRef `json:"datasource"`
	GridPos     struct{ H, W, X, Y int }
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []Target `json:"targets"`
	Panels  []Panel  `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *DatasourceRef `json:"datasource"`
	Instant    bool           `json:"instant"`
}

// DatasourceRef names a datasource by type and UID.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a template variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Datasource *DatasourceRef  `json:"datasource"`
}

// Load parses every embedded dashboard, keyed by file name.
func Load() (map[string]Dashboard, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	out := make(map[string]Dashboard, len(names))
	for _, name := range names {
		data, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("parse dashboard %s: %w", name, err)
		}
		out[name] = d
	}
	return out, nil
}

// AllPanels returns the panels of d that are not rows, including those
// inside collapsed rows, in order.
func AllPanels(d Dashboard) []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// LabelValues splits the query of a Prometheus template variable,
// label_values(SELECTOR, LABEL), into its series selector and label name;
// ok is false for any other form.
func LabelValues(query string) (selector, label string, ok bool) {
	m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(query))
	if m == nil {
		return "", "", false
	}
	return strings.TrimSpace(m[1]), m[2], true
}

var (
	identRE    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	stringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchersRE = regexp.MustCompile(`\{[^}]*\}`)
	byRE       = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	durRE      = regexp.MustCompile(`\[[^\]]*\]|\boffset\s+-?[0-9a-z]+`)

	// promqlWords are the PromQL keywords and functions the dashboards and
	// rules use, which MetricNames skips.
	promqlWords = func() map[string]bool {
		m := map[string]bool{}
		for _, w := range strings.Fields(`sum min max avg count stddev stdvar topk bottomk quantile count_values group
			rate irate increase delta idelta deriv predict_linear histogram_quantile label_replace label_join
			abs ceil floor round clamp clamp_min clamp_max sort sort_desc time timestamp vector scalar absent absent_over_time
			min_over_time max_over_time avg_over_time sum_over_time count_over_time last_over_time changes resets
			and or unless by without on ignoring group_left group_right offset bool inf nan e`) {
			m[w] = true
		}
		return m
	}()
)

// MetricNames returns, sorted, the metric names a PromQL expression selects
// by name: the identifiers outside strings, label matchers, grouping
// clauses, range durations and offsets that are not PromQL keywords or
// functions. It is a lexical approximation, enough for the expressions of
// the dashboards and rules (no {__name__=...} selectors).
func MetricNames(expr string) []string {
	e := stringRE.ReplaceAllString(expr, `""`)
	e = matchersRE.ReplaceAllString(e, " ")
	e = byRE.ReplaceAllString(e, " ")
	e = durRE.ReplaceAllString(e, " ")
	seen := map[string]bool{}
	var out []string
	for _, w := range identRE.FindAllString(e, -1) {
		if promqlWords[w] || seen[w] || strings.HasPrefix(w, "$") {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}
