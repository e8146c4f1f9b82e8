// Package kubernetes holds no code: its directory holds the Kubernetes
// manifests of sip_exporter (a DaemonSet for live capture on the nodes
// that carry SIP, a Deployment and Service for a pool of HEP collectors),
// and its test decodes them strictly against the Kubernetes API types
// (k8s.io/api), so that a misspelt or mistyped field fails.
package kubernetes
