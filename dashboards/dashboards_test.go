package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dashboardFiles are the dashboards and the template variables each must
// offer (issue 7).
var dashboardFiles = map[string][]string{
	"sip-overview.json":        {"datasource", "job", "instance", "node", "peer", "method"},
	"sip-sla.json":             {"datasource", "job", "instance", "node", "peer", "direction"},
	"sip-exporter-health.json": {"datasource", "job", "instance"},
}

// datasourceRef is how every panel and query names its datasource: the
// dashboard's datasource variable, never a UID of one Grafana.
const datasourceRef = "${datasource}"

func loadDashboards(t *testing.T) map[string]Dashboard {
	t.Helper()
	ds, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(dashboardFiles) {
		t.Errorf("Load returned %d dashboards, dashboardFiles lists %d", len(ds), len(dashboardFiles))
	}
	return ds
}

func TestDashboardFilesListed(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := dashboardFiles[f]; !ok {
			t.Errorf("%s is not in dashboardFiles: add it with its required variables", f)
		}
	}
}

func TestDashboards(t *testing.T) {
	uids := map[string]string{}
	for name, d := range loadDashboards(t) {
		t.Run(name, func(t *testing.T) {
			if d.UID == "" || d.Title == "" {
				t.Errorf("uid %q, title %q: both required", d.UID, d.Title)
			}
			if other, ok := uids[d.UID]; ok {
				t.Errorf("uid %q also used by %s", d.UID, other)
			}
			uids[d.UID] = name
			if d.SchemaVersion < 39 {
				t.Errorf("schemaVersion %d, want a current Grafana's (>= 39)", d.SchemaVersion)
			}
			checkVariables(t, d, dashboardFiles[name])
			ids := map[int]bool{}
			for _, p := range d.Panels {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
					t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
				}
			}
			panels := AllPanels(d)
			if len(panels) == 0 {
				t.Fatal("no panels")
			}
			for _, p := range panels {
				where := "panel " + p.Title
				if p.Title == "" {
					t.Errorf("panel %d has no title", p.ID)
				}
				if strings.TrimSpace(p.Description) == "" {
					t.Errorf("%s: no description", where)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit (fieldConfig.defaults.unit)", where)
				}
				checkDatasource(t, where, p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				for _, q := range p.Targets {
					checkDatasource(t, where+" query "+q.RefID, q.Datasource)
					if strings.TrimSpace(q.Expr) == "" {
						t.Errorf("%s query %s: empty expr", where, q.RefID)
					}
					if strings.Contains(q.Expr, "$peer") && !strings.Contains(q.Expr, `peer=~"$peer"`) {
						t.Errorf("%s query %s: $peer must be used as peer=~\"$peer\" so that All matches series without a peer label", where, q.RefID)
					}
					if strings.Contains(q.Expr, "$direction") && !strings.Contains(q.Expr, `direction=~"$direction"`) {
						t.Errorf("%s query %s: $direction must be used as direction=~\"$direction\" so that All matches series without a direction label", where, q.RefID)
					}
					// Both legs of a proxy or B2BUA are counted: every
					// session query of the SLA dashboard can pick a
					// direction (collector/README.md, "Both legs of a proxy or B2BUA").
					if name == "sip-sla.json" && strings.Contains(q.Expr, "sip_session_") && strings.Count(q.Expr, `peer=~"$peer"`) != strings.Count(q.Expr, `direction=~"$direction"`) {
						t.Errorf("%s query %s: every selector with peer=~\"$peer\" needs direction=~\"$direction\"", where, q.RefID)
					}
				}
			}
			checkNoFixedUID(t, name)
		})
	}
}

func checkDatasource(t *testing.T, where string, ds *DatasourceRef) {
	t.Helper()
	if ds == nil || ds.Type != "prometheus" || ds.UID != datasourceRef {
		t.Errorf("%s: datasource %+v, want {type: prometheus, uid: %s}", where, ds, datasourceRef)
	}
}

// checkVariables checks the template variables: the datasource variable of
// type prometheus, the required query variables, each with All matching any
// value (also a missing label: peer without a peers file).
func checkVariables(t *testing.T, d Dashboard, required []string) {
	t.Helper()
	byName := map[string]Variable{}
	for _, v := range d.Templating.List {
		byName[v.Name] = v
	}
	for _, name := range required {
		v, ok := byName[name]
		if !ok {
			t.Errorf("no template variable %q", name)
			continue
		}
		if name == "datasource" {
			var q string
			if v.Type != "datasource" || json.Unmarshal(v.Query, &q) != nil || q != "prometheus" {
				t.Errorf("variable datasource: type %q query %s, want a datasource variable of type prometheus", v.Type, v.Query)
			}
			continue
		}
		if v.Type != "query" || !strings.HasPrefix(v.Definition, "label_values(") {
			t.Errorf("variable %s: type %q definition %q, want a label_values query", name, v.Type, v.Definition)
		}
		if !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s: includeAll %v allValue %q, want All = \".*\"", name, v.IncludeAll, v.AllValue)
		}
		checkDatasource(t, "variable "+name, v.Datasource)
	}
}

// checkNoFixedUID fails on any "uid" in the file other than the dashboard's
// own, the datasource variable and Grafana's built-in annotation source.
func checkNoFixedUID(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "uid" && path != "" {
					if s, _ := c.(string); s != datasourceRef && s != "-- Grafana --" {
						t.Errorf("%s%s: uid %q: a fixed datasource UID, use %s", path, ".uid", s, datasourceRef)
					}
				}
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path+"[]", c)
			}
		}
	}
	walk("", raw)
}

// TestDashboardMetricsExist checks that every metric a dashboard reads is
// one the exporter documents or one of Prometheus' own, so a typo in a
// metric name cannot hide behind "no data".
func TestDashboardMetricsExist(t *testing.T) {
	known := knownMetrics(t)
	for name, d := range loadDashboards(t) {
		for _, p := range AllPanels(d) {
			for _, q := range p.Targets {
				for _, m := range MetricNames(q.Expr) {
					if !known[m] {
						t.Errorf("%s panel %q: metric %s is not exported (collector/*.go, issue 5/6 names) nor Prometheus' own", name, p.Title, m)
					}
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			sel, _, ok := LabelValues(v.Definition)
			if !ok {
				t.Errorf("%s variable %s: %q is not label_values(SELECTOR, LABEL)", name, v.Name, v.Definition)
			}
			for _, m := range MetricNames(sel) {
				if !known[m] {
					t.Errorf("%s variable %s: metric %s unknown", name, v.Name, m)
				}
			}
		}
	}
}
