package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// registerPlugins registers the SDK's panel and query types (stat, table,
// timeseries, bargauge, ..., prometheus) once, so that a panel's options
// and fieldConfig.defaults.custom and its targets decode into their typed
// variants instead of a map.
var registerPlugins = sync.OnceFunc(plugins.RegisterDefaultPlugins)

// buildErr returns err, or nil when it is the SDK's empty error list: the
// UnmarshalJSONStrict and Validate methods of grafana-foundation-sdk v0.0.22
// return their cog.BuildErrors as an error even when it holds none.
func buildErr(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// decodeGrafana decodes a dashboard strictly with Grafana's own schema types
// (github.com/grafana/grafana-foundation-sdk/go, generated from Grafana's
// CUE schema): an unknown field, a field of the wrong type or a missing
// required field anywhere in the dashboard, its panels, rows, their
// options, fieldConfig and queries, and its template variables is an
// error. Where the SDK's strict decoder is looser than that, it adds the
// checks:
//
//   - fieldConfig (defaults, overrides) is decoded with json.Unmarshal by
//     Panel.UnmarshalJSONStrict (only defaults.custom is strict): decode it
//     again with FieldConfigSource.UnmarshalJSONStrict;
//   - a panel type without a registered variant keeps its options as a
//     map: every panel type must have one;
//   - a query whose datasource type it cannot tell becomes a map
//     (UnknownDataquery), and the queries it decodes are dropped from the
//     panel: every query must decode strictly as a Prometheus query with a
//     datasource of type prometheus;
//   - PanelOrRowPanel.UnmarshalJSONStrict drops the panel it decoded: each
//     panel and row is decoded again.
//
// Still loose in the SDK: transformations' options and a variable's query
// object are typed any.
func decodeGrafana(data []byte) (d *dashboard.Dashboard, panels []dashboard.Panel, rows int, err error) {
	registerPlugins()
	d = &dashboard.Dashboard{}
	if err := buildErr(d.UnmarshalJSONStrict(data)); err != nil {
		return nil, nil, 0, err
	}
	if err := buildErr(d.Validate()); err != nil {
		return nil, nil, 0, fmt.Errorf("validate: %w", err)
	}
	// The SDK's PanelOrRowPanel.UnmarshalJSONStrict reports the errors of
	// a panel but, for the same empty error list, drops the decoded panel:
	// decode each panel again, to check what the strict decoder leaves
	// loose.
	var raw struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, 0, err
	}
	var errs []error
	check := func(rp json.RawMessage) {
		var p dashboard.Panel
		if err := buildErr(p.UnmarshalJSONStrict(rp)); err != nil {
			errs = append(errs, err)
			return
		}
		title := ""
		if p.Title != nil {
			title = *p.Title
		}
		if err := buildErr(p.Validate()); err != nil {
			errs = append(errs, fmt.Errorf("panel %q: validate: %w", title, err))
		}
		if _, ok := cog.ConfigForPanelcfgVariant(p.Type); !ok {
			errs = append(errs, fmt.Errorf("panel %q: type %q is not a panel type the SDK knows", title, p.Type))
		}
		// Panel.UnmarshalJSONStrict reports a query's errors but drops
		// the queries it decoded (the same empty error list), and a query
		// whose datasource type it cannot tell becomes a map: decode
		// every query as the Prometheus query it must be.
		var fields struct {
			FieldConfig json.RawMessage   `json:"fieldConfig"`
			Targets     []json.RawMessage `json:"targets"`
		}
		if err := json.Unmarshal(rp, &fields); err != nil {
			errs = append(errs, err)
		}
		p.Targets = nil
		for i, rq := range fields.Targets {
			var q prometheus.Dataquery
			if err := buildErr(q.UnmarshalJSONStrict(rq)); err != nil {
				errs = append(errs, fmt.Errorf("panel %q: targets[%d] as a Prometheus query: %w", title, i, err))
				continue
			}
			if q.Datasource == nil || q.Datasource.Type == nil || *q.Datasource.Type != "prometheus" {
				errs = append(errs, fmt.Errorf("panel %q: targets[%d] has no datasource of type prometheus", title, i))
			}
			p.Targets = append(p.Targets, &q)
		}
		if fields.FieldConfig != nil {
			var src dashboard.FieldConfigSource
			if err := buildErr(src.UnmarshalJSONStrict(fields.FieldConfig)); err != nil {
				errs = append(errs, fmt.Errorf("panel %q: fieldConfig: %w", title, err))
			}
		}
		panels = append(panels, p)
	}
	for _, rp := range raw.Panels {
		var head struct {
			Type   string            `json:"type"`
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(rp, &head); err != nil {
			return nil, nil, 0, err
		}
		if head.Type != "row" {
			check(rp)
			continue
		}
		var row dashboard.RowPanel
		if err := buildErr(row.UnmarshalJSONStrict(rp)); err != nil {
			errs = append(errs, err)
		}
		if err := buildErr(row.Validate()); err != nil {
			errs = append(errs, fmt.Errorf("row: validate: %w", err))
		}
		rows++
		for _, c := range head.Panels {
			check(c)
		}
	}
	return d, panels, rows, errors.Join(errs...)
}

// TestDashboardsGrafanaSchema decodes every dashboard strictly with
// Grafana's schema types.
func TestDashboardsGrafanaSchema(t *testing.T) {
	for name := range dashboardFiles {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			d, panels, rows, err := decodeGrafana(data)
			if err != nil {
				t.Fatalf("Grafana's schema rejects %s:\n%v", name, err)
			}
			queries := 0
			for _, p := range panels {
				queries += len(p.Targets)
			}
			if want := len(AllPanels(loadDashboards(t)[name])); len(panels) != want {
				t.Errorf("%d panels decoded, the file has %d", len(panels), want)
			}
			t.Logf("%s: schemaVersion %d, %d rows, %d panels, %d Prometheus queries, %d variables: accepted",
				name, d.SchemaVersion, rows, len(panels), queries, len(d.Templating.List))
		})
	}
}

// TestDashboardsGrafanaSchemaRejects proves that the strict decoding fails:
// each case mutates one field of a copy of a dashboard, written to a
// temporary file, and the copy must be rejected with an error that names
// the field.
func TestDashboardsGrafanaSchemaRejects(t *testing.T) {
	// firstPanel returns the first panel of type typ.
	firstPanel := func(d map[string]any, typ string) map[string]any {
		for _, p := range d["panels"].([]any) {
			if p := p.(map[string]any); p["type"] == typ {
				return p
			}
		}
		t.Fatalf("no %s panel", typ)
		return nil
	}
	cases := []struct {
		name, file, want string
		mutate           func(d map[string]any)
	}{
		{"unknown dashboard field", "sip-overview.json", "refreshh", func(d map[string]any) {
			d["refreshh"] = d["refresh"]
		}},
		{"mistyped dashboard field", "sip-sla.json", "schemaVersion", func(d map[string]any) {
			d["schemaVersion"] = "39"
		}},
		{"unknown panel field", "sip-overview.json", "gridpos", func(d map[string]any) {
			p := firstPanel(d, "timeseries")
			p["gridpos"] = p["gridPos"]
		}},
		{"mistyped gridPos", "sip-exporter-health.json", "gridPos", func(d map[string]any) {
			firstPanel(d, "stat")["gridPos"].(map[string]any)["w"] = "6"
		}},
		{"unknown row field", "sip-overview.json", "collapse", func(d map[string]any) {
			firstPanel(d, "row")["collapse"] = true
		}},
		{"unknown stat option", "sip-sla.json", "colourMode", func(d map[string]any) {
			firstPanel(d, "stat")["options"].(map[string]any)["colourMode"] = "value"
		}},
		{"wrong enum in stat option", "sip-sla.json", "graphMode", func(d map[string]any) {
			firstPanel(d, "stat")["options"].(map[string]any)["graphMode"] = 1
		}},
		{"unknown timeseries legend option", "sip-overview.json", "showLegends", func(d map[string]any) {
			firstPanel(d, "timeseries")["options"].(map[string]any)["legend"].(map[string]any)["showLegends"] = true
		}},
		{"unknown fieldConfig.defaults field", "sip-overview.json", "units", func(d map[string]any) {
			firstPanel(d, "stat")["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["units"] = "reqps"
		}},
		{"mistyped fieldConfig.defaults.min", "sip-sla.json", "min", func(d map[string]any) {
			firstPanel(d, "stat")["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["min"] = "0"
		}},
		{"unknown custom field config", "sip-overview.json", "fillOpacitty", func(d map[string]any) {
			custom := firstPanel(d, "timeseries")["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["custom"].(map[string]any)
			custom["fillOpacitty"] = 10
		}},
		{"unknown table option", "sip-overview.json", "showHeaders", func(d map[string]any) {
			firstPanel(d, "table")["options"].(map[string]any)["showHeaders"] = true
		}},
		{"unknown query field", "sip-exporter-health.json", "legendFromat", func(d map[string]any) {
			q := firstPanel(d, "timeseries")["targets"].([]any)[0].(map[string]any)
			q["legendFromat"] = q["legendFormat"]
		}},
		{"mistyped query field", "sip-sla.json", "instant", func(d map[string]any) {
			firstPanel(d, "stat")["targets"].([]any)[0].(map[string]any)["instant"] = "true"
		}},
		{"query without its datasource", "sip-sla.json", "no datasource of type prometheus", func(d map[string]any) {
			p := firstPanel(d, "stat")
			delete(p, "datasource")
			delete(p["targets"].([]any)[0].(map[string]any), "datasource")
		}},
		{"unknown panel type", "sip-exporter-health.json", "statt", func(d map[string]any) {
			firstPanel(d, "stat")["type"] = "statt"
		}},
		{"unknown variable field", "sip-overview.json", "includeALL", func(d map[string]any) {
			v := d["templating"].(map[string]any)["list"].([]any)[1].(map[string]any)
			v["includeALL"] = v["includeAll"]
		}},
		{"mistyped variable field", "sip-overview.json", "multi", func(d map[string]any) {
			d["templating"].(map[string]any)["list"].([]any)[1].(map[string]any)["multi"] = "true"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			var d map[string]any
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			c.mutate(d)
			mutated, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(path, mutated, 0o644); err != nil {
				t.Fatal(err)
			}
			copied, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, _, _, err = decodeGrafana(copied)
			if err == nil {
				t.Fatalf("%s: the mutated copy %s was accepted", c.name, path)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("rejected, but the error does not name %q:\n%v", c.want, err)
			}
		})
	}
}
