// Command sip_exporter counts SIP responses seen on a network interface or
// in capture files and serves the counts as Prometheus metrics.
//
//	sip_exporter --capture.interface=eth0
//	sip_exporter --capture.pcap-file=calls.pcap --capture.pcap-speed=realtime --capture.pcap-loop
//	sip_exporter --capture.interface=eth0=sbc1-access --capture.interface=eth1=sbc1-core
//	sip_exporter report [--format=table|json|prometheus] FILE[=NODE]...
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
)

const program = "sip_exporter"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed command line.
type options struct {
	interfaces   []string
	pcapFiles    []string
	pcapSpeed    string
	pcapLoop     bool
	ringSize     units.Base2Bytes
	blockTimeout time.Duration
	workers      int // --capture.workers
	promisc      bool
	bpfFile      string
	filterRTP    bool
	pipeline     pipeline.Config
	hep          input.HEPConfig
	hepTransport string
	hepCertFile  string
	hepKeyFile   string
	hepAuthKey   []byte
	metricsPath  string
	configFile   string
	lifecycle    bool
	web          *web.FlagConfig
	log          promslog.Config

	reportFormat string
	reportFiles  []string
}

// run parses args, runs the chosen command and returns the exit code.
//
// The flags that both commands use (the pipeline: decoding, merge, dedup,
// counting, tracking, --config.file) are the application's; the flags of
// the sources, the HEP listener, the web server and logging are serve's,
// and --format is report's, so that each command's --help lists what it
// uses. serve is the default command: its flags work without the word
// serve (sip_exporter --capture.interface=eth0), and the top-level --help
// lists them too.
func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(program, "Prometheus exporter for SIP metrics: counts SIP requests and responses, follows transactions, sessions and registrations (RFC 6076 delays and ratios) from live capture, capture files or HEP, and serves them as /metrics; report prints the same from capture files.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.UsageTemplate(usageTemplate)
	exited := false
	app.Terminate(func(int) { exited = true }) // after --help or --version
	var o options
	var hepMaxPacket units.Base2Bytes
	var txOn bool
	def := decode.DefaultConfig()

	serve := app.Command("serve", "Capture live (--capture.interface), replay capture files (--capture.pcap-file) or receive HEP (--hep.listen-address), and serve the counts on /metrics until stopped. The default command: its flags work without the word serve.").Default()
	report := app.Command("report", "Read capture files through the same pipeline as serve, print a summary and exit: requests and responses by method and code with their retransmissions, session attempts, ASR, NER, SER, SEER, ISA and SCR (RFC 6076, ITU-T E.411), SRD p50/p95, timeouts, calls still up at the end, registrations, Reason causes (Q.850) and the capture's time span; per node, and per peer with --config.file. Exit code 1 when a file cannot be read.")

	// Flags of both commands.
	app.Flag("capture.workers", "Decoders of each plain pcap file (report, --capture.pcap-file), which read it in place at once, and capture workers per interface, 1 to 64: AF_PACKET sockets in one fanout group, each with its own share of --capture.ring-size, goroutine and decoder; the kernel hashes each flow (both directions, every IP fragment) to one worker. Default: the CPUs, at most 8.").Default(fmt.Sprint(defaultCaptureWorkers(runtime.NumCPU()))).IntVar(&o.workers)
	app.Flag("capture.shards", "Shards of the counting stage, 1 to 64: each counts and tracks the messages of its share of the Call-IDs (REGISTER by address of record) on a goroutine of its own, with its own time-ordered merge, dedup and transaction tracker; the counts are the same for any number. Default: the CPUs, at most 8.").Default(fmt.Sprint(defaultShards(runtime.NumCPU()))).IntVar(&o.pipeline.Shards)
	o.pipeline.Merge = merge.DefaultConfig()
	app.Flag("capture.max-lateness", "How long after its capture time a message of a live source (interface, HEP, realtime file) may arrive and still be merged in time order with the other sources; must cover HEP agents' batching. Later messages are counted, as late. Counting and transaction timeouts run this far behind the wall clock. The one tolerance of the time model: a clock off by more than a tenth of it (at most 100ms; above --capture.block-timeout) is corrected, and twice that is the window of early responses and the least --capture.dedup-window.").Default(o.pipeline.Merge.Lateness.String()).DurationVar(&o.pipeline.Merge.Lateness)
	app.Flag("capture.tcp-max-flows", "TCP flow directions reassembled at once; past it the least recently seen is evicted.").Default(fmt.Sprint(def.TCP.MaxFlows)).IntVar(&o.pipeline.TCP.MaxFlows)
	app.Flag("capture.tcp-flow-timeout", "A TCP flow with no segment for this long is forgotten.").Default(def.TCP.FlowTimeout.String()).DurationVar(&o.pipeline.TCP.FlowTimeout)
	app.Flag("capture.tcp-max-memory", "Bytes of partial SIP messages and out-of-order segments held by TCP reassembly, over all flows of one source (an interface, a file); past it the least recently active flows holding memory are evicted and counted.").Default(units.Base2Bytes(def.TCP.MaxMemoryBytes).String()).BytesVar((*units.Base2Bytes)(&o.pipeline.TCP.MaxMemoryBytes))
	o.pipeline.TCP.MaxBufferBytes = def.TCP.MaxBufferBytes
	o.pipeline.TCP.MaxOutOfOrder = def.TCP.MaxOutOfOrder
	app.Flag("capture.dedup-window", "Count a SIP message once when the same bytes between the same addresses and ports (and IPv4 ID) are seen again within this time (copies from several interfaces, mirrored directions or HEP agents). Below 500ms (T1): a SIP retransmission comes T1 or more later and always counts; at least the skew window of the time model (a fifth of --capture.max-lateness, at most 200ms), which two clocks may keep uncorrected. 0 disables.").Default(pipeline.DefaultDedupWindow.String()).DurationVar(&o.pipeline.DedupWindow)
	app.Flag("capture.ip-max-datagrams", "IP datagrams reassembled from fragments at once; past it the oldest is dropped. 0 disables reassembly.").Default(fmt.Sprint(def.Fragments.MaxDatagrams)).IntVar(&o.pipeline.Fragments.MaxDatagrams)
	app.Flag("capture.ip-fragment-timeout", "An IP datagram not complete this long after its first fragment is dropped.").Default(def.Fragments.Timeout.String()).DurationVar(&o.pipeline.Fragments.Timeout)
	o.pipeline.Fragments.MaxBytes = def.Fragments.MaxBytes
	app.Flag("capture.node-name", "Value of the node label for interface and file sources without their own (NAME=NODE), and HEP packets without a node.").Default("").StringVar(&o.pipeline.NodeName)
	o.pipeline.HEP = def.HEP
	app.Flag("capture.decode-hep", "Decapsulate HEP found inside captured UDP/TCP payloads (a captured HEP feed) and count its SIP.").Default("true").BoolVar(&o.pipeline.HEP.Decapsulate)
	o.pipeline.Tx = collector.DefaultTrackerConfig()
	app.Flag("sip.transactions", "Follow SIP transactions and dialogs for retransmission, session and RFC 6076 delay metrics (--no-sip.transactions turns it off).").Default("true").BoolVar(&txOn)
	app.Flag("sip.max-transactions", "SIP transactions tracked at once (about 180 bytes of RSS each at 1000000 open: 100 in the table, the rest Go heap headroom), and separately answered dialogs awaiting their BYE (up to 130 bytes each); past it the oldest is forgotten and counted.").Default(fmt.Sprint(o.pipeline.Tx.MaxTransactions)).IntVar(&o.pipeline.Tx.MaxTransactions)
	app.Flag("sip.invite-timeout", "How long an INVITE transaction waits for its final response: from the INVITE, and again from each provisional response but 100 (Timer C). After its final response an INVITE transaction is kept 64*T1 = 32s (RFC 6026 Timer L); non-INVITE transactions last 32s.").Default(o.pipeline.Tx.InviteTimeout.String()).DurationVar(&o.pipeline.Tx.InviteTimeout)
	app.Flag("sip.session-max-age", "An established session (2xx to an initial INVITE) whose BYE is never seen ends this long after its 2xx (sip_sessions_ended_total{reason=\"max_age\"}).").Default(o.pipeline.Tx.SessionMaxAge.String()).DurationVar(&o.pipeline.Tx.SessionMaxAge)
	app.Flag("sip.max-registrations", "Addresses of record with an unexpired registration tracked at once (about 85 bytes each); past it the one expiring soonest is forgotten and counted.").Default(fmt.Sprint(o.pipeline.Tx.MaxRegistrations)).IntVar(&o.pipeline.Tx.MaxRegistrations)
	app.Flag("hep.max-nodes", "Distinct node label values tracked; messages of further nodes are counted as node=\"other\".").Default("256").IntVar(&o.pipeline.MaxNodes)
	app.Flag("config.file", "YAML file naming peers (CIDRs, ports) and nodes; adds the peer and direction labels. serve reloads it on SIGHUP and POST /-/reload.").PlaceHolder("PATH").StringVar(&o.configFile)
	var phrases bool
	var maxPhrases int
	app.Flag("collector.response-phrases", "Count reason phrases as sent on the wire in sip_response_phrases_total{node,code,phrase}.").BoolVar(&phrases)
	app.Flag("collector.max-phrases-per-code", "Distinct phrases per status code counted under their own label value; later ones count as phrase=\"other\".").Default("16").IntVar(&maxPhrases)

	// Flags of serve: sources, the HEP listener, the web server, logging.
	serve.Flag("capture.interface", "Network interface to capture live with AF_PACKET (repeatable; libpcap's pseudo-interface any is not supported); NAME=NODE gives its messages their own node label value instead of --capture.node-name. Needs root or CAP_NET_RAW.").PlaceHolder("NAME[=NODE]").StringsVar(&o.interfaces)
	serve.Flag("capture.pcap-file", "pcap or pcapng file to read (repeatable); PATH=NODE gives its messages their own node label value (split at the last \"=\"). To print a summary of files instead, use the report command.").PlaceHolder("PATH[=NODE]").StringsVar(&o.pcapFiles)
	serve.Flag("capture.pcap-speed", "Pace of capture files: fast (as fast as possible) or realtime (at the pace they were captured).").Default("fast").EnumVar(&o.pcapSpeed, "fast", "realtime")
	serve.Flag("capture.pcap-loop", "Read capture files again from the start when they end, until stopped.").BoolVar(&o.pcapLoop)
	serve.Flag("capture.ring-size", "Kernel ring buffer per interface (TPACKET_V3), shared between its --capture.workers in blocks of 128 KiB to 1 MiB, the largest that give each worker blocks for 2 s of --capture.block-timeout (32 at 64ms; fewer past 16 workers at 64MiB); at least one block per worker.").Default("64MiB").BytesVar(&o.ringSize)
	serve.Flag("capture.block-timeout", "How long the kernel fills a capture ring block before handing it over part full (TPACKET_V3 tp_retire_blk_tov, whole ms): the most a packet waits in the ring on a quiet link.").Default(input.DefaultBlockTimeout.String()).DurationVar(&o.blockTimeout)
	serve.Flag("capture.promiscuous", "Put capture interfaces in promiscuous mode (needed on SPAN/mirror ports).").BoolVar(&o.promisc)
	serve.Flag("capture.bpf-file", "File with a classic BPF filter run in the kernel, in the format of `tcpdump -ddd EXPRESSION` (numbers, not the expression); it replaces the default media filter (a port filter also drops IP fragments after the first).").PlaceHolder("PATH").StringVar(&o.bpfFile)
	serve.Flag("capture.filter-rtp", "Drop in the kernel UDP that cannot be SIP or HEP (RTP, RTCP, SRTP, STUN, DTLS), judged by content; TCP, SCTP, tunnels and IP fragments pass (--no-capture.filter-rtp keeps every packet).").Default("true").BoolVar(&o.filterRTP)
	o.hep = input.DefaultHEPConfig()
	serve.Flag("hep.listen-address", "Receive HEP (v3, also v1/v2 over UDP) from SIP servers and capture agents on HOST:PORT (conventionally :9060).").PlaceHolder("HOST:PORT").Default("").StringVar(&o.hep.Addr)
	serve.Flag("hep.transport", "HEP transports: udp, tcp or both (on the same address).").Default("both").EnumVar(&o.hepTransport, "udp", "tcp", "both")
	serve.Flag("hep.tls-cert-file", "Certificate (PEM) to serve HEP over TLS on the TCP transport.").PlaceHolder("PATH").StringVar(&o.hepCertFile)
	serve.Flag("hep.tls-key-file", "Private key (PEM) of --hep.tls-cert-file.").PlaceHolder("PATH").StringVar(&o.hepKeyFile)
	var authKey, authKeyFile string
	serve.Flag("hep.auth-key", "Drop and count HEPv3 packets whose auth key chunk is not this key.").PlaceHolder("KEY").StringVar(&authKey)
	serve.Flag("hep.auth-key-file", "Read --hep.auth-key from a file (trailing newline removed).").PlaceHolder("PATH").StringVar(&authKeyFile)
	serve.Flag("hep.max-connections", "HEP TCP connections served at once; more are closed and counted.").Default(fmt.Sprint(o.hep.MaxConns)).IntVar(&o.hep.MaxConns)
	serve.Flag("hep.read-timeout", "Close a HEP TCP connection idle for this long.").Default(o.hep.ReadTimeout.String()).DurationVar(&o.hep.ReadTimeout)
	serve.Flag("hep.max-packet-size", "Largest HEP packet accepted on TCP; a larger length closes the connection.").Default("64KiB").BytesVar(&hepMaxPacket)
	serve.Flag("hep.max-connections-per-address", "HEP TCP connections served at once from one sender address (an IPv6 sender's /64); more are closed and counted.").Default(fmt.Sprint(o.hep.MaxConnsPerAddr)).IntVar(&o.hep.MaxConnsPerAddr)
	serve.Flag("hep.packet-timeout", "Close a HEP TCP connection whose packet (or TLS handshake) is not complete this long after its first byte.").Default(o.hep.PacketTimeout.String()).DurationVar(&o.hep.PacketTimeout)
	serve.Flag("hep.udp-workers", "UDP sockets on --hep.listen-address, each read in batches (recvmmsg) by its own goroutine; above 1 they share the port with SO_REUSEPORT (Linux) and the kernel keeps each sender on one socket. Default: half the CPUs, 1 to 4.").Default(fmt.Sprint(defaultUDPWorkers(runtime.NumCPU()))).IntVar(&o.hep.UDPWorkers)
	var hepAllowed []string
	serve.Flag("hep.allowed-networks", "Accept HEP (UDP and TCP) only from these sender networks, CIDR or address, comma-separated or repeated; others are dropped and counted. Default: any.").PlaceHolder("CIDR,...").StringsVar(&hepAllowed)
	serve.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.metricsPath)
	serve.Flag("web.enable-lifecycle", "Enable POST /-/reload (reload --config.file over HTTP).").BoolVar(&o.lifecycle)
	o.web = kingpinflag.AddFlags(serve, ":10060")
	o.log.Level = promslog.NewLevel()
	serve.Flag(promslogflag.LevelFlagName, promslogflag.LevelFlagHelp).Default("info").HintOptions(promslog.LevelFlagOptions...).SetValue(o.log.Level)
	o.log.Format = promslog.NewFormat()
	serve.Flag(promslogflag.FormatFlagName, promslogflag.FormatFlagHelp).Default("logfmt").HintOptions(promslog.FormatFlagOptions...).SetValue(o.log.Format)

	// Flags and arguments of report.
	report.Flag("format", "Output format: table (for people), json (for scripts: a stable document with a version field, see README) or prometheus (the exposition /metrics would serve for the sip_ families).").Default("table").EnumVar(&o.reportFormat, "table", "json", "prometheus")
	report.Arg("file", "pcap or pcapng files (gzip'd too) or NetMon 2.x captures, read as one capture merged by time; FILE=NODE counts a file's messages under its own node label value (split at the last \"=\").").Required().StringsVar(&o.reportFiles)

	if version.Version == "" {
		version.Version = releaseVersion
	}
	app.Version(version.Print(program))
	app.HelpFlag.Short('h')
	cmd, err := app.Parse(args)
	if exited { // --help or --version, also of a command whose arguments are missing
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v%s\n", program, err, parseHint(err, args))
		return 2
	}
	o.hep.MaxPacketBytes = int(hepMaxPacket)
	if o.hep.AllowedNetworks, err = input.ParseNetworks(hepAllowed); err != nil {
		fmt.Fprintf(stderr, "%s: error: --hep.allowed-networks: %v\n", program, err)
		return 2
	}
	if err := checkListenAddress(o.hep.Addr); err != nil {
		fmt.Fprintf(stderr, "%s: error: --hep.listen-address: %v\n", program, err)
		return 2
	}
	if o.workers < 1 || o.workers > input.MaxWorkers {
		fmt.Fprintf(stderr, "%s: error: --capture.workers %d: must be 1 to %d\n", program, o.workers, input.MaxWorkers)
		return 2
	}
	if o.pipeline.Shards < 1 || o.pipeline.Shards > 64 {
		fmt.Fprintf(stderr, "%s: error: --capture.shards %d: must be 1 to 64\n", program, o.pipeline.Shards)
		return 2
	}
	if maxPhrases < 1 || maxPhrases > collector.MaxPhrasesPerCode {
		fmt.Fprintf(stderr, "%s: error: --collector.max-phrases-per-code %d: must be 1 to %d\n", program, maxPhrases, collector.MaxPhrasesPerCode)
		return 2
	}
	if phrases {
		o.pipeline.MaxPhrases = maxPhrases
	}
	switch {
	case o.pipeline.Tx.SessionMaxAge <= 0:
		fmt.Fprintf(stderr, "%s: error: --sip.session-max-age %v: must be positive\n", program, o.pipeline.Tx.SessionMaxAge)
		return 2
	case o.pipeline.Tx.MaxRegistrations < 1:
		fmt.Fprintf(stderr, "%s: error: --sip.max-registrations %d: must be at least 1\n", program, o.pipeline.Tx.MaxRegistrations)
		return 2
	}
	o.pipeline.NoTx = !txOn
	switch {
	case authKey != "" && authKeyFile != "":
		fmt.Fprintf(stderr, "%s: error: --hep.auth-key and --hep.auth-key-file exclude each other\n", program)
		return 2
	case authKey != "":
		o.hepAuthKey = []byte(authKey)
	case authKeyFile != "":
		b, err := os.ReadFile(authKeyFile)
		if err != nil {
			fmt.Fprintf(stderr, "%s: error: --hep.auth-key-file: %v\n", program, err)
			return 2
		}
		if o.hepAuthKey = bytes.TrimRight(b, "\r\n"); len(o.hepAuthKey) == 0 {
			fmt.Fprintf(stderr, "%s: error: --hep.auth-key-file %q is empty\n", program, authKeyFile)
			return 2
		}
	}
	switch cmd {
	case report.FullCommand():
		return runReport(&o, stdout, stderr)
	case serve.FullCommand():
		logger := promslog.New(&o.log)
		if logger == nil {
			return 2
		}
		if err := runServe(&o, logger); err != nil {
			logger.Error("exiting", logArgs(err)...)
			return 1
		}
	}
	return 0
}

// defaultCaptureWorkers is the default of --capture.workers on a machine
// of cpus CPUs: one per CPU, 1 to 8 (each worker keeps a merge queue and
// reassembly tables of its own, and the merge that orders them all is one
// goroutine).
func defaultCaptureWorkers(cpus int) int { return min(max(cpus, 1), 8) }

// runServe starts every source and the web server, and returns when a
// signal arrives or the server fails.
func runServe(o *options, logger *slog.Logger) error {
	logger.Info("starting "+program, "version", version.Info(), "build_context", version.BuildContext())
	if err := o.loadConfig(); err != nil {
		return err
	}
	p, err := pipeline.New(o.pipeline)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sources, err := newSources(ctx, o, p)
	if err != nil {
		return explain(err, o)
	}
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sip_exporter_source_restarts_total",
		Help: "Times a failed live source was reopened (it is retried with backoff, 1s doubling to 30s; sip_exporter_source_up is 0 meanwhile).",
	}, []string{"source", "type"})

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector(program),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		restarts,
		input.NewCollector(inputs(sources)...),
	)
	reg.MustRegister(p.Collectors()...)
	if p.Dedup() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sip_exporter_duplicates_removed_total",
			Help: "SIP messages not counted because the same bytes were seen within --capture.dedup-window (copies, not SIP retransmissions).",
		}, func() float64 { return float64(p.DuplicatesRemoved()) }))
	}
	var rl *reloader
	if o.configFile != "" {
		rl = newReloader(o.configFile, p.SIP(), logger)
		reg.MustRegister(rl)
	}
	reloadOnSIGHUP(ctx, rl, logger)
	go p.Run(ctx)
	if err := startSources(ctx, sources, restarts, logger); err != nil {
		return explain(err, o)
	}

	mux, err := newMux(o, reg, rl, logger)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, o.web, logger) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web server shutdown: %w", err)
	}
	return nil
}

// newMux returns the web server's handler: the metrics of reg on
// --web.telemetry-path, /-/reload, and a landing page on / that links to
// what is served, the metrics (exporter-toolkit's page would also link to
// pprof pages, which this server does not serve).
func newMux(o *options, reg *prometheus.Registry, rl *reloader, logger *slog.Logger) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.Handle(o.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelError),
		EnableOpenMetrics:   true,
		MaxRequestsInFlight: 8,
		Registry:            reg,
	}))
	mux.Handle("/-/reload", reloadHandler(rl, o.lifecycle))
	if o.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        program,
			Description: "Prometheus exporter for SIP metrics",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: o.metricsPath, Text: "Metrics"}},
			Profiling:   "false",
		})
		if err != nil {
			return nil, fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}
