package input

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// TestHEPListenerUDPSocket: a worker's socket is blocking, out of the
// runtime's poller (which would wake a thread per datagram even while the
// worker waits out its read interval), and closing it wakes a worker that
// waits for it. As root its buffer is what the listener asks, doubled by
// the kernel, past net.core.rmem_max.
func TestHEPListenerUDPSocket(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP = "127.0.0.1:0", false
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenHEP(cfg, []*decode.Decoder{d}, new(Stats), nil, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := l.udp[0].SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags, rcvbuf int
	var ferr, berr error
	if err := raw.Control(func(fd uintptr) {
		flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0)
		rcvbuf, berr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil || ferr != nil || berr != nil {
		t.Fatal(err, ferr, berr)
	}
	if flags&unix.O_NONBLOCK != 0 {
		t.Error("socket is non-blocking: the runtime's poller watches it")
	}
	if os.Geteuid() == 0 && rcvbuf != 2*hepReadBuffer {
		t.Errorf("receive buffer %d as root, want %d", rcvbuf, 2*hepReadBuffer)
	}
	t.Logf("receive buffer %d bytes", rcvbuf)
	done := make(chan error, 1)
	go func() { done <- l.ServeUDP(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // let the worker park on the socket's epoll
	l.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeUDP after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake the worker waiting for its socket")
	}
}

// TestHEPListenerUDPRearm: a worker that found nothing parks until a
// datagram comes, again and again: its socket's one-shot epoll is armed
// anew for every wait.
func TestHEPListenerUDPRearm(t *testing.T) {
	l, rec, st, _ := listenBatch(t, 1, nil)
	serve(t, l)
	for i := range 5 {
		time.Sleep(30 * time.Millisecond) // past the read interval: the worker parks
		sendFrom(t, 80, l.UDPAddr(), seqPacket(t, "r", i+1))
		waitFor(t, 5*time.Second, "the datagram after a wait", func() bool { return rec.total() == i+1 })
	}
	checkOrder(t, rec)
	t.Logf("%d reads for 5 datagrams", st.HEPUDPReads.Load())
}
