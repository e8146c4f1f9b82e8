package dashboards

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

const (
	deployDir  = "../deploy"
	rulesDir   = "../deploy/prometheus/rules"
	testsDir   = "../deploy/prometheus/tests"
	promConfig = "../deploy/prometheus/prometheus.yml"
	alertsFile = "../deploy/prometheus/rules/sip-alerts.yml"
)

// pendingMetrics are the families of issue 5 (transaction metrics) and
// issue 6 (peers) that the dashboards and rules read; their names are
// fixed by those issues. Histograms are listed by base name.
var pendingMetrics = []string{
	"sip_response_retransmissions_total", "sip_request_retransmissions_total",
	"sip_session_attempts_total", "sip_session_outcomes_total", "sip_session_timeouts_total",
	"sip_session_request_delay_seconds", "sip_registration_request_delay_seconds",
	"sip_session_disconnect_delay_seconds", "sip_session_duration_seconds",
	"sip_reason_causes_total",
	"sip_exporter_transactions", "sip_exporter_transactions_evicted_total",
	"sip_exporter_transactions_timed_out_total",
	"sip_response_phrases_total",
	"sip_exporter_config_last_reload_successful", "sip_exporter_config_last_reload_success_timestamp_seconds",
}

// knownMetrics returns the metric names that exist: the families declared
// in collector/*.go, the pending families above, the Go, process and scrape
// metrics the dashboards use, and the recording rules.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	add := func(name string) {
		known[name] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			known[name+s] = true
		}
	}
	var files []string
	for _, glob := range []string{"../collector/*.go", "../capture/*/*.go", "../cmd/sip_exporter/*.go"} {
		f, err := filepath.Glob(glob)
		if err != nil || len(f) == 0 {
			t.Fatalf("sources %s: %v", glob, err)
		}
		files = append(files, f...)
	}
	descRE := regexp.MustCompile(`(?:NewDesc\(|Name:)\s*"([a-z_:]+)"`)
	selfRE := regexp.MustCompile(`\bd\(\s*"([a-z_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range descRE.FindAllSubmatch(src, -1) {
			add(string(m[1]))
		}
		for _, m := range selfRE.FindAllSubmatch(src, -1) {
			add("sip_exporter_" + string(m[1]))
		}
	}
	for _, m := range pendingMetrics {
		add(m)
	}
	for _, m := range []string{"up", "scrape_duration_seconds", "process_resident_memory_bytes",
		"process_cpu_seconds_total", "go_memstats_heap_inuse_bytes", "sip_exporter_build_info"} {
		add(m)
	}
	for _, f := range loadRuleFiles(t) {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					known[r.Record] = true
				}
			}
		}
	}
	return known
}

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is a recording or alerting rule.
type Rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRuleFiles(t *testing.T) map[string]RuleFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in %s: %v", rulesDir, err)
	}
	out := map[string]RuleFile{}
	for _, f := range files {
		var rf RuleFile
		readYAML(t, f, &rf)
		out[f] = rf
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// requireTool skips the test (fails it under CI=true) when tool is not on
// PATH.
func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		msg := tool + " not on PATH (Debian package prometheus)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: never skipped)")
		}
		t.Skip(msg)
	}
}

// TestRulesPromtool runs promtool check rules, promtool test rules and
// promtool check config on deploy/prometheus.
func TestRulesPromtool(t *testing.T) {
	requireTool(t, "promtool")
	rules, _ := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	tests, _ := filepath.Glob(filepath.Join(testsDir, "*.yml"))
	if len(tests) == 0 {
		t.Fatalf("no promtool tests in %s", testsDir)
	}
	for _, args := range [][]string{
		append([]string{"check", "rules"}, rules...),
		append([]string{"test", "rules"}, tests...),
		{"check", "config", "--syntax-only", promConfig},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s: ok", strings.Join(args[:2], " "))
		}
	}
}

var (
	recordNameRE = regexp.MustCompile(`^([a-z]+(?:_[a-z]+)*):([a-z][a-z0-9_]*):([a-z0-9_]+)$`)
	levelLabels  = []string{"node", "peer", "method", "code", "class", "outcome", "instance", "source", "failure"}
)

// TestRuleFiles checks the conventions of the rules: level:metric:operation
// names whose level lists kept labels, 1m and 5m variants, alerts with a
// for (their labels and annotations: TestAlertsMixinConventions), and only
// known metrics.
func TestRuleFiles(t *testing.T) {
	known := knownMetrics(t)
	records := map[string]bool{}
	for path, f := range loadRuleFiles(t) {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				for _, m := range MetricNames(r.Expr) {
					if !known[m] {
						t.Errorf("%s: rule %s%s reads unknown metric %s", path, r.Record, r.Alert, m)
					}
				}
				if r.Record != "" {
					records[r.Record] = true
					m := recordNameRE.FindStringSubmatch(r.Record)
					if m == nil {
						t.Errorf("%s: record %q is not level:metric:operation", path, r.Record)
						continue
					}
					for _, l := range strings.Split(m[1], "_") {
						if !slices.Contains(levelLabels, l) {
							t.Errorf("%s: record %s: level part %q is not a label name", path, r.Record, l)
						}
					}
					continue
				}
				if r.Alert == "" {
					t.Errorf("%s: rule without record or alert: %q", path, r.Expr)
					continue
				}
				if r.For == "" {
					t.Errorf("alert %s: no for:", r.Alert)
				}
			}
		}
	}
	for r := range records {
		for _, pair := range [][2]string{{"1m", "5m"}, {"5m", "1m"}} {
			if strings.HasSuffix(r, pair[0]) {
				if other := strings.TrimSuffix(r, pair[0]) + pair[1]; !records[other] && !strings.HasPrefix(r, "node:sip_messages") {
					t.Errorf("record %s has no %s variant %s", r, pair[1], other)
				}
			}
		}
	}
}

const (
	// runbook is the file that holds the runbook: this folder's README.md,
	// one section per alert.
	runbook = "README.md"
	// runbookBase is where every alert's runbook_url points, followed by
	// the anchor of the alert's section of dashboards/README.md.
	runbookBase = "https://github.com/sip-exporter/sip_exporter/blob/main/dashboards/README.md#"
)

// readmes are the Markdown pages whose links TestReadmeLinks checks: the
// landing page and the reference beside the code.
var readmes = []string{
	"../README.md",
	"../capture/README.md",
	"../collector/README.md",
	"README.md",
	"../deploy/README.md",
}

var (
	alertNameRE     = regexp.MustCompile(`^SIP(?:Exporter)?(?:[A-Z][A-Za-z0-9]*)+$`)
	alertSeverities = []string{"critical", "warning", "info"}
)

// TestAlertsMixinConventions checks every alert against the conventions of
// the monitoring mixins: a CamelCase name starting with SIPExporter (the
// exporter's own health, read from up and sip_exporter_ metrics) or SIP
// (the traffic), a severity of critical, warning or info and no other
// label a routing tree would have to know, summary, description and
// runbook_url annotations and nothing else, and a runbook_url that points
// at the alert's own section of dashboards/README.md, whose anchor exists.
func TestAlertsMixinConventions(t *testing.T) {
	anchors := markdownAnchors(t, runbook)
	n := 0
	for _, g := range loadRuleFiles(t)[alertsFile].Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !alertNameRE.MatchString(r.Alert) {
				t.Errorf("alert %s: not a CamelCase name starting with SIP", r.Alert)
			}
			exporterHealth := true
			for _, m := range MetricNames(r.Expr) {
				if m != "up" && !strings.HasPrefix(m, "sip_exporter_") {
					exporterHealth = false
				}
			}
			if exporterHealth != strings.HasPrefix(r.Alert, "SIPExporter") {
				t.Errorf("alert %s: the SIPExporter prefix is for the alerts on the exporter's own health (up, sip_exporter_*), and only for them", r.Alert)
			}
			if s := r.Labels["severity"]; !slices.Contains(alertSeverities, s) {
				t.Errorf("alert %s: severity %q, want one of %v", r.Alert, s, alertSeverities)
			}
			for l := range r.Labels {
				if l != "severity" {
					t.Errorf("alert %s: label %s: only severity is set by the rule", r.Alert, l)
				}
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			for a := range r.Annotations {
				if a != "summary" && a != "description" && a != "runbook_url" {
					t.Errorf("alert %s: annotation %s: want only summary, description and runbook_url", r.Alert, a)
				}
			}
			url := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookBase)
			if !ok {
				t.Errorf("alert %s: runbook_url %q does not start with %s", r.Alert, url, runbookBase)
				continue
			}
			if want := strings.ToLower(r.Alert); anchor != want {
				t.Errorf("alert %s: runbook_url anchor #%s, want its own section #%s", r.Alert, anchor, want)
			}
			if !anchors[anchor] {
				t.Errorf("alert %s: runbook_url anchor #%s is not a heading of %s", r.Alert, anchor, runbook)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts")
	}
}

// TestReadmeLinks checks every link of the README pages that is not to
// another site: an in-page link [text](#anchor) names a heading of the
// page; a relative link [text](path) or [text](path#anchor) names a file
// or folder of the repository that exists and, when it is a Markdown file
// with an anchor, a heading of that file. Links in fenced code blocks are
// not links.
func TestReadmeLinks(t *testing.T) {
	linkRE := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchorsOf := map[string]map[string]bool{}
	anchors := func(path string) map[string]bool {
		a, ok := anchorsOf[path]
		if !ok {
			a = markdownAnchors(t, path)
			anchorsOf[path] = a
		}
		return a
	}
	n := 0
	for _, page := range readmes {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		fenced := false
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				fenced = !fenced
				continue
			}
			if fenced {
				continue
			}
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				n++
				path, anchor, _ := strings.Cut(target, "#")
				file := page
				if path != "" {
					file = filepath.Join(filepath.Dir(page), path)
					if _, err := os.Stat(file); err != nil {
						t.Errorf("%s:%d: link to %s: %v", page, i+1, target, err)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(file, ".md") {
					t.Errorf("%s:%d: link to %s: an anchor in a file that is not Markdown", page, i+1, target)
					continue
				}
				if !anchors(file)[anchor] {
					t.Errorf("%s:%d: link to %s: #%s is not a heading of %s", page, i+1, target, anchor, file)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no links found in the README pages")
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown file: the heading's text in lower case, without punctuation
// other than - and _, spaces as -, and -1, -2... for repeated ones. Lines
// in fenced code blocks are not headings.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

// TestThresholdTable checks the thresholds table at the head of
// sip-alerts.yml: every alert is in it, and every value of a row appears in
// the expression or the for: of the alert it names.
func TestThresholdTable(t *testing.T) {
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]Rule{}
	for _, g := range loadRuleFiles(t)[alertsFile].Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts[r.Alert] = r
			}
		}
	}
	rowRE := regexp.MustCompile(`^#\s*\|\s*(\w+)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$`)
	inTable := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		m := rowRE.FindStringSubmatch(line)
		if m == nil || m[1] == "Alert" {
			continue
		}
		name, param, value := m[1], m[2], m[3]
		r, ok := alerts[name]
		if !ok {
			t.Errorf("threshold table names %s, which is not an alert", name)
			continue
		}
		inTable[name] = true
		if param == "for" {
			if r.For != value {
				t.Errorf("%s: table says for %s, the rule has for %s", name, value, r.For)
			}
			continue
		}
		tokenRE := regexp.MustCompile(`(^|[^0-9.a-z_])` + regexp.QuoteMeta(value) + `($|[^0-9.a-z_])`)
		if !tokenRE.MatchString(r.Expr) {
			t.Errorf("%s: table value %q (%s) does not appear in the expression:\n%s", name, value, param, r.Expr)
		}
	}
	for name := range alerts {
		if !inTable[name] {
			t.Errorf("alert %s is not in the threshold table", name)
		}
	}
}

// TestEveryAlertTested checks that the promtool tests evaluate every alert
// at least once expecting nothing and once expecting it to fire.
func TestEveryAlertTested(t *testing.T) {
	type testFile struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(testsDir, "*.yml"))
	for _, f := range files {
		var tf testFile
		readYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, g := range loadRuleFiles(t)[alertsFile].Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if !firing[r.Alert] {
				t.Errorf("alert %s: no promtool test expects it to fire", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s: no promtool test expects it silent", r.Alert)
			}
		}
	}
}

// TestCompose parses deploy/docker-compose.yml and the Grafana provisioning
// files (Docker is not on the CI machine): every bind-mounted path exists in
// the repository, Prometheus scrapes the exporter service on the port it
// listens on and loads rule files that exist, Grafana's datasource points at
// the Prometheus service, and its dashboard provider reads the directory
// where ../dashboards is mounted.
func TestCompose(t *testing.T) {
	type service struct {
		Image   string   `yaml:"image"`
		Build   any      `yaml:"build"`
		Command []string `yaml:"command"`
		Ports   []string `yaml:"ports"`
		Volumes []string `yaml:"volumes"`
	}
	var compose struct {
		Services map[string]service `yaml:"services"`
		Volumes  map[string]any     `yaml:"volumes"`
	}
	readYAML(t, filepath.Join(deployDir, "docker-compose.yml"), &compose)

	exporter, ok1 := compose.Services["sip-exporter"]
	prom, ok2 := compose.Services["prometheus"]
	grafana, ok3 := compose.Services["grafana"]
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("services %v: want sip-exporter, prometheus and grafana", keys(compose.Services))
	}
	if exporter.Build == nil {
		t.Error("sip-exporter: no build section")
	}
	mounts := map[string]string{} // container path -> host path (relative to deploy)
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q: want SOURCE:TARGET", name, v)
				continue
			}
			src, dst := parts[0], parts[1]
			if !strings.HasPrefix(src, ".") {
				if _, ok := compose.Volumes[src]; !ok {
					t.Errorf("%s: named volume %q is not declared", name, src)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(deployDir, src)); err != nil {
				t.Errorf("%s: bind mount %s: %v", name, src, err)
			}
			mounts[dst] = src
		}
	}

	// The exporter listens where Prometheus scrapes.
	listen := flagValue(exporter.Command, "--web.listen-address")
	_, port, _ := strings.Cut(listen, ":")
	if port == "" || !hasPort(exporter.Ports, port) {
		t.Errorf("sip-exporter: --web.listen-address %q and ports %v do not agree", listen, exporter.Ports)
	}
	cfgHost := mounts[flagValue(prom.Command, "--config.file")]
	if cfgHost == "" {
		t.Fatalf("prometheus: --config.file %q is not a bind-mounted file", flagValue(prom.Command, "--config.file"))
	}
	var pcfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(deployDir, cfgHost), &pcfg)
	target := ""
	for _, sc := range pcfg.ScrapeConfigs {
		if sc.JobName == "sip_exporter" && len(sc.StaticConfigs) > 0 && len(sc.StaticConfigs[0].Targets) > 0 {
			target = sc.StaticConfigs[0].Targets[0]
		}
	}
	if target != "sip-exporter:"+port {
		t.Errorf("prometheus.yml: job sip_exporter scrapes %q, want sip-exporter:%s", target, port)
	}
	for _, rf := range pcfg.RuleFiles {
		// Relative to the config file, in the container and in the repository alike.
		if _, err := os.Stat(filepath.Join(deployDir, filepath.Dir(cfgHost), rf)); err != nil {
			t.Errorf("prometheus.yml: rule file %s: %v", rf, err)
		}
	}
	if len(pcfg.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule files")
	}
	if !hasPort(prom.Ports, "9090") {
		t.Errorf("prometheus: ports %v, want 9090", prom.Ports)
	}

	// Grafana provisioning.
	provHost := mounts["/etc/grafana/provisioning"]
	if provHost == "" {
		t.Fatal("grafana: /etc/grafana/provisioning is not bind-mounted")
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, URL, Access string
			IsDefault               bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(deployDir, provHost, "datasources", "prometheus.yml"), &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL != "http://prometheus:9090" || !ds.Datasources[0].IsDefault {
		t.Errorf("grafana datasource %+v: want one default prometheus datasource at http://prometheus:9090", ds)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(deployDir, provHost, "dashboards", "sip.yml"), &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("grafana dashboard provider %+v: want one file provider", dp)
	}
	src := mounts[dp.Providers[0].Options.Path]
	if filepath.Clean(filepath.Join(deployDir, src)) != filepath.Clean("../dashboards") {
		t.Errorf("grafana: the provider reads %s, where %q is mounted, not ../dashboards", dp.Providers[0].Options.Path, src)
	}
	if !hasPort(grafana.Ports, "3000") {
		t.Errorf("grafana: ports %v, want 3000", grafana.Ports)
	}
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func hasPort(ports []string, port string) bool {
	for _, p := range ports {
		p, _, _ = strings.Cut(p, "/")
		if strings.HasSuffix(p, ":"+port) {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
