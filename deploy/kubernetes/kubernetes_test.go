package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the files of this directory and the kinds, in order, of
// their documents.
var manifests = map[string][]string{
	"daemonset.yaml": {"DaemonSet"},
	"hep-pool.yaml":  {"Deployment", "Service"},
}

// object is a decoded document: one of the API types below.
type object struct {
	file, kind, name string
	daemonSet        *appsv1.DaemonSet
	deployment       *appsv1.Deployment
	service          *corev1.Service
}

// splitDocuments splits a YAML stream at its "---" separator lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// decode decodes every document of data strictly into the API type its
// apiVersion and kind name: sigs.k8s.io/yaml's UnmarshalStrict turns the
// YAML into JSON and decodes it with unknown fields and duplicate keys
// rejected, into the same Go types the API server decodes into. A field
// of the wrong type (a string for a number) fails too.
func decode(file string, data []byte) ([]object, error) {
	var out []object
	for i, doc := range splitDocuments(data) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("%s document %d: %w", file, i, err)
		}
		o := object{file: file, kind: head.Kind}
		var target any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 DaemonSet":
			o.daemonSet = &appsv1.DaemonSet{}
			target = o.daemonSet
		case "apps/v1 Deployment":
			o.deployment = &appsv1.Deployment{}
			target = o.deployment
		case "v1 Service":
			o.service = &corev1.Service{}
			target = o.service
		default:
			return nil, fmt.Errorf("%s document %d: %s %s: not a kind this test decodes", file, i, head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			return nil, fmt.Errorf("%s document %d (%s): %w", file, i, head.Kind, err)
		}
		switch {
		case o.daemonSet != nil:
			o.name = o.daemonSet.Name
		case o.deployment != nil:
			o.name = o.deployment.Name
		case o.service != nil:
			o.name = o.service.Name
		}
		out = append(out, o)
	}
	return out, nil
}

func decodeFile(t *testing.T, file string) []object {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// exporterFlags returns the flags of sip_exporter: those main declares
// with Flag("..."), the web flags of exporter-toolkit and the log flags of
// promslog.
func exporterFlags(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../../cmd/sip_exporter/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources of cmd/sip_exporter: %v", err)
	}
	flags := map[string]bool{}
	re := regexp.MustCompile(`\bFlag\("([a-z0-9.-]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			flags[string(m[1])] = true
		}
	}
	if !flags["capture.interface"] || !flags["hep.listen-address"] {
		t.Fatalf("flags of cmd/sip_exporter not found: %v", flags)
	}
	for _, f := range []string{"web.listen-address", "web.config.file", "web.systemd-socket", "log.level", "log.format"} {
		flags[f] = true
	}
	return flags
}

// TestManifestsStrict decodes every manifest strictly and checks what the
// types cannot: the files and kinds are the ones listed, every workload's
// selector matches its pod template, every argument is a flag of the
// exporter, ports use a real protocol, each Service selects the pods of
// exactly one workload and targets named ports they have, the capture
// DaemonSet adds exactly the capabilities capture needs and the HEP pool
// none, and the pool's Service keeps each sender on one pod.
func TestManifestsStrict(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := manifests[f]; !ok {
			t.Errorf("%s is not in manifests: add it with its kinds", f)
		}
	}
	flags := exporterFlags(t)
	type workload struct {
		name     string
		selector map[string]string
		pod      corev1.PodTemplateSpec
	}
	var workloads []workload
	var services []object
	for file, kinds := range manifests {
		objs := decodeFile(t, file)
		var got []string
		for _, o := range objs {
			got = append(got, o.kind)
			switch {
			case o.daemonSet != nil:
				workloads = append(workloads, workload{o.kind + " " + o.name, o.daemonSet.Spec.Selector.MatchLabels, o.daemonSet.Spec.Template})
			case o.deployment != nil:
				workloads = append(workloads, workload{o.kind + " " + o.name, o.deployment.Spec.Selector.MatchLabels, o.deployment.Spec.Template})
			case o.service != nil:
				services = append(services, o)
			}
		}
		if !slices.Equal(got, kinds) {
			t.Errorf("%s: kinds %v, want %v", file, got, kinds)
		}
	}
	matches := func(selector, labels map[string]string) bool {
		for k, v := range selector {
			if labels[k] != v {
				return false
			}
		}
		return len(selector) > 0
	}
	for _, w := range workloads {
		if !matches(w.selector, w.pod.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", w.name, w.selector, w.pod.Labels)
		}
		for _, c := range w.pod.Spec.Containers {
			for _, a := range c.Args {
				name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				if !strings.HasPrefix(a, "--") || !flags[strings.TrimPrefix(name, "no-")] {
					t.Errorf("%s container %s: argument %q is not a flag of sip_exporter", w.name, c.Name, a)
				}
			}
			for _, p := range c.Ports {
				if p.Protocol != corev1.ProtocolTCP && p.Protocol != corev1.ProtocolUDP && p.Protocol != corev1.ProtocolSCTP {
					t.Errorf("%s container %s: port %s protocol %q", w.name, c.Name, p.Name, p.Protocol)
				}
			}
			var added []string
			if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil {
				for _, c := range sc.Capabilities.Add {
					added = append(added, string(c))
				}
				if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("%s container %s: drops %v, want [ALL]", w.name, c.Name, sc.Capabilities.Drop)
				}
			} else {
				t.Errorf("%s container %s: no securityContext.capabilities", w.name, c.Name)
			}
			capture := slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--capture.interface=") })
			if want := []string{"NET_RAW"}; capture && !slices.Equal(added, want) {
				t.Errorf("%s container %s captures: adds %v, want %v", w.name, c.Name, added, want)
			}
			if !capture && len(added) > 0 {
				t.Errorf("%s container %s does not capture: adds %v, want none", w.name, c.Name, added)
			}
		}
	}
	if len(services) == 0 {
		t.Fatal("no Service")
	}
	for _, s := range services {
		var selected []workload
		for _, w := range workloads {
			if matches(s.service.Spec.Selector, w.pod.Labels) {
				selected = append(selected, w)
			}
		}
		if len(selected) != 1 {
			t.Errorf("Service %s: selector %v matches %d workloads, want one", s.name, s.service.Spec.Selector, len(selected))
			continue
		}
		w := selected[0]
		for _, p := range s.service.Spec.Ports {
			found := false
			for _, c := range w.pod.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == p.TargetPort.String() && cp.Protocol == p.Protocol {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("Service %s port %s: targetPort %s/%s is not a port of %s", s.name, p.Name, p.TargetPort.String(), p.Protocol, w.name)
			}
		}
		if s.service.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
			t.Errorf("Service %s: sessionAffinity %q, want ClientIP: a HEP sender must stick to one collector", s.name, s.service.Spec.SessionAffinity)
		}
		if s.service.Spec.Type == corev1.ServiceTypeLoadBalancer && s.service.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("Service %s: externalTrafficPolicy %q, want Local: the sender's address must reach the pod", s.name, s.service.Spec.ExternalTrafficPolicy)
		}
	}
}

// TestManifestsStrictRejects proves that decoding is strict: a copy of a
// manifest, written to a temporary file with one field misspelt or
// mistyped, must be rejected with an error that names the field.
func TestManifestsStrictRejects(t *testing.T) {
	cases := []struct {
		name, file, old, new, want string
	}{
		{"misspelt top-level field", "daemonset.yaml", "\nspec:\n", "\nspce:\n", "spce"},
		{"misspelt pod spec field", "daemonset.yaml", "hostNetwork: true", "hostNetwrok: true", "hostNetwrok"},
		{"misspelt container field", "hep-pool.yaml", "          args:\n", "          arguments:\n", "arguments"},
		{"misspelt securityContext field", "daemonset.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalaton: false", "allowPrivilegeEscalaton"},
		{"misspelt Service field", "hep-pool.yaml", "\n  sessionAffinity: ClientIP", "\n  sessionAfinity: ClientIP", "sessionAfinity"},
		{"mistyped replicas", "hep-pool.yaml", "replicas: 3", "replicas: three", "replicas"},
		{"mistyped containerPort", "daemonset.yaml", "containerPort: 10060", "containerPort: [10060]", "containerPort"},
		{"mistyped timeoutSeconds", "hep-pool.yaml", "timeoutSeconds: 86400", "timeoutSeconds: {seconds: 86400}", "timeoutSeconds"},
		{"duplicate field", "daemonset.yaml", "hostNetwork: true", "hostNetwork: true\n      hostNetwork: false", "hostNetwork"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Count(data, []byte(c.old)) != 1 {
				t.Fatalf("%s: %q occurs %d times, want once", c.file, c.old, bytes.Count(data, []byte(c.old)))
			}
			path := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(path, bytes.Replace(data, []byte(c.old), []byte(c.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			mutated, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = decode(path, mutated)
			if err == nil {
				t.Fatalf("the mutated copy %s was accepted", path)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("rejected, but the error does not name %q: %v", c.want, err)
			}
		})
	}
}
