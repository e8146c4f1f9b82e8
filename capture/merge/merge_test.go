package merge

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// ev is the test's message: which input sent it and its number there.
type ev struct {
	input, n int
}

// recorder is a Sink that records what it is handed.
type recorder struct {
	mu       sync.Mutex
	times    []int64
	evs      []ev
	late     []bool
	advances []int64
}

func (r *recorder) Message(t int64, e *ev, late bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, t)
	r.evs = append(r.evs, *e)
	r.late = append(r.late, late)
}

func (r *recorder) Advance(w int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advances = append(r.advances, w)
}

func (r *recorder) snapshot() ([]int64, []ev, []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times), slices.Clone(r.evs), slices.Clone(r.late)
}

// waitFor waits up to 5 s until n messages have been handed on.
func (r *recorder) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if times, _, _ := r.snapshot(); len(times) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages not handed on within 5 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTest(t *testing.T, cfg Config) (*Merger[ev], *recorder) {
	t.Helper()
	r := &recorder{}
	m, err := New[ev](cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

// TestExactOrder merges three exact inputs whose producers run at their
// own pace (the second slowly) into one stream in time order, as mergecap
// merges files, whatever the queue and pending sizes.
func TestExactOrder(t *testing.T) {
	for _, cfg := range []Config{
		{Lateness: time.Second, QueueSize: 2, MaxPending: 1},
		{Lateness: time.Second, QueueSize: 4, MaxPending: 8},
		DefaultConfig(),
	} {
		m, r := newTest(t, cfg)
		const inputs, each = 3, 500
		ins := make([]*Input[ev], inputs)
		for i := range ins {
			ins[i] = m.Input(m.Source(string(rune('a'+i))), Exact, 0)
		}
		m.Seal()
		done := make(chan struct{})
		go func() { m.Run(context.Background()); close(done) }()
		var wg sync.WaitGroup
		for i, in := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer in.Close()
				for n := range each {
					if i == 1 && n%50 == 0 {
						time.Sleep(time.Millisecond)
					}
					// input i sends times i, i+3, i+6, ...: interleaved
					if !in.Push(context.Background(), int64(n*inputs+i), "", &ev{i, n}) {
						t.Error("push failed")
					}
				}
			}()
		}
		wg.Wait()
		<-done
		times, evs, late := r.snapshot()
		if len(times) != inputs*each {
			t.Fatalf("%+v: %d messages, want %d", cfg, len(times), inputs*each)
		}
		for k, tm := range times {
			if tm != int64(k) || late[k] {
				t.Fatalf("%+v: message %d has time %d (late %v), want %d in order", cfg, k, tm, late[k], k)
			}
			if want := (ev{k % inputs, k / inputs}); evs[k] != want {
				t.Fatalf("message %d is %+v, want %+v", k, evs[k], want)
			}
		}
	}
}

// TestExactLate: a message older than what the merge has handed on
// already is handed on at once, marked late and counted for its source.
func TestExactLate(t *testing.T) {
	m, r := newTest(t, DefaultConfig())
	src := m.Source("a")
	in := m.Input(src, Exact, 0)
	m.Seal()
	done := make(chan struct{})
	go func() { m.Run(context.Background()); close(done) }()
	ctx := context.Background()
	in.Push(ctx, 10, "", &ev{0, 0})
	in.Push(ctx, 20, "", &ev{0, 1})
	// Wait until the merge has handed both on (a single open exact input
	// moves the watermark to its latest time, 20).
	for {
		if times, _, _ := r.snapshot(); len(times) == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	in.Push(ctx, 5, "", &ev{0, 2})
	in.Close()
	<-done
	times, _, late := r.snapshot()
	if !slices.Equal(times, []int64{10, 20, 5}) || !slices.Equal(late, []bool{false, false, true}) {
		t.Errorf("times %v late %v, want [10 20 5] [false false true]", times, late)
	}
	if src.Late() != 1 {
		t.Errorf("Late() = %d, want 1", src.Late())
	}
}

// TestLiveLateness: a live message is held until the wall clock has passed
// its time by the lateness, so that a message of another source captured
// earlier but delivered later still goes first.
func TestLiveLateness(t *testing.T) {
	// A long lateness, so that a loaded machine scheduling the second push
	// late cannot make the test see the first message released alone.
	const lateness = 2 * time.Second
	m, r := newTest(t, Config{Lateness: lateness, QueueSize: 16, MaxPending: 16})
	a, b := m.Input(m.Source("a"), Live, 0), m.Input(m.Source("b"), Live, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	now := time.Now().UnixNano()
	a.Push(ctx, now, "", &ev{0, 0})
	time.Sleep(50 * time.Millisecond)
	b.Push(ctx, now-int64(time.Millisecond), "", &ev{1, 0}) // captured first, delivered later
	r.waitFor(t, 2)
	_, evs, late := r.snapshot()
	if !slices.Equal(evs, []ev{{1, 0}, {0, 0}}) || slices.Contains(late, true) {
		t.Errorf("order %v late %v, want b's message first, none late", evs, late)
	}
	// A message older than the watermark is late.
	a.Push(ctx, now-int64(time.Minute), "", &ev{0, 1})
	deadline := time.Now().Add(5 * time.Second)
	for m.Source("a").Late() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("late message not counted within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The watermark stays behind the wall clock by the lateness.
	if w := m.Watermark(); w > time.Now().UnixNano()-int64(lateness) {
		t.Errorf("watermark %d is less than the lateness behind the wall clock", w)
	}
}

// TestClockAhead: an agent whose clock is 300 s ahead is merged by its
// corrected time: its messages are handed on within the lateness, the
// watermark never runs ahead of the wall clock (so it cannot expire other
// sources' transactions), and its offset is estimated.
func TestClockAhead(t *testing.T) {
	const lateness = 100 * time.Millisecond
	m, r := newTest(t, Config{Lateness: lateness, QueueSize: 64, MaxPending: 64})
	src := m.Source("udp://:9060")
	in := m.Input(src, Live, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	const ahead = int64(300 * time.Second)
	for n := range 5 {
		now := time.Now().UnixNano()
		in.Push(ctx, now+ahead, "fast", &ev{0, n})
		in.Push(ctx, now, "right", &ev{1, n})
		time.Sleep(10 * time.Millisecond)
	}
	r.waitFor(t, 10)
	times, evs, late := r.snapshot()
	if slices.Contains(late, true) {
		t.Errorf("late %v, want none", late)
	}
	for k := 1; k < len(times); k++ {
		if times[k] < times[k-1] {
			t.Errorf("times out of order: %v", times)
		}
	}
	wall := time.Now().UnixNano()
	for k, tm := range times {
		if tm > wall {
			t.Errorf("message %+v handed on with time %d ahead of the wall clock %d", evs[k], tm, wall)
		}
	}
	r.mu.Lock()
	for _, w := range r.advances {
		if w > wall {
			t.Errorf("watermark %d ahead of the wall clock %d", w, wall)
		}
	}
	r.mu.Unlock()
	if o, ok := src.Offset("fast"); !ok || math.Abs(float64(o-ahead)) > float64(time.Second) {
		t.Errorf("offset of the fast clock %v (%v), want about 300s", time.Duration(o), ok)
	}
	if o, ok := src.Offset("right"); !ok || math.Abs(float64(o)) > float64(time.Second) {
		t.Errorf("offset of the right clock %v (%v), want about 0", time.Duration(o), ok)
	}
}

// TestLiveFirstInputLater: a merger that runs with no input yet (a HEP
// listener over TCP alone, before its first connection) does not end its
// time: the messages of a live input added later are merged in time, not
// handed on as late, and the watermark follows the wall clock.
func TestLiveFirstInputLater(t *testing.T) {
	m, r := newTest(t, Config{Lateness: 50 * time.Millisecond, QueueSize: 64, MaxPending: 64})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	time.Sleep(20 * time.Millisecond) // the merge has looked at its (no) inputs
	in := m.Input(m.Source("tcp://:9060"), Live, 0)
	in.Push(ctx, time.Now().UnixNano(), "", &ev{0, 0})
	r.waitFor(t, 1)
	if _, _, late := r.snapshot(); late[0] {
		t.Error("the first live input's message was handed on as late")
	}
	if w := m.Watermark(); w == math.MaxInt64 {
		t.Error("the watermark ended time before any input was added")
	}
}

// TestLiveDrop: a full live input whose merge does not run drops and
// counts, after FullWait (none here), instead of blocking its producer.
func TestLiveDrop(t *testing.T) {
	m, _ := newTest(t, Config{Lateness: time.Second, QueueSize: 2, MaxPending: 16})
	src := m.Source("eth0")
	in := m.Input(src, Live, 0) // nothing runs the merge
	now := time.Now().UnixNano()
	var ok int
	for n := range 5 {
		if in.Push(context.Background(), now, "", &ev{0, n}) {
			ok++
		}
	}
	if ok != 2 || src.Dropped() != 3 {
		t.Errorf("pushed %d, dropped %d; want 2 and 3", ok, src.Dropped())
	}
}

// TestPushDrainAllocs: pushing, draining and handing on a message allocate
// nothing once the heap and slab have grown.
func TestPushDrainAllocs(t *testing.T) {
	r := &recorder{times: make([]int64, 0, 1<<12), evs: make([]ev, 0, 1<<12), late: make([]bool, 0, 1<<12)}
	m, err := New[ev](DefaultConfig(), r)
	if err != nil {
		t.Fatal(err)
	}
	in := m.Input(m.Source("a"), Exact, 0)
	inputs := []*Input[ev]{in}
	ts := int64(0)
	step := func() {
		ts++
		in.Push(context.Background(), ts, "", &ev{0, int(ts)})
		m.drain(inputs)
		m.release(ts)
		if len(r.times) > 1<<11 {
			r.times, r.evs, r.late = r.times[:0], r.evs[:0], r.late[:0]
		}
	}
	for range 100 {
		step()
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("push, drain, release: %v allocs per message", a)
	}
}

// BenchmarkPushDrain is the merge's cost per message on one exact input.
func BenchmarkPushDrain(b *testing.B) {
	r := &recorder{}
	m, _ := New[ev](DefaultConfig(), discard{})
	_ = r
	in := m.Input(m.Source("a"), Exact, 0)
	inputs := []*Input[ev]{in}
	ts := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		ts++
		in.Push(context.Background(), ts, "", &ev{0, 1})
		if ts&63 == 0 {
			m.drain(inputs)
			m.release(ts)
		}
	}
}

// BenchmarkPushDrainConcurrent is the merge's cost per message with the
// producer and the merge on goroutines of their own, as they run: one
// exact input, pushed into until it is full, drained as it fills.
func BenchmarkPushDrainConcurrent(b *testing.B) {
	m, _ := New[ev](DefaultConfig(), discard{})
	in := m.Input(m.Source("a"), Exact, 0)
	m.Seal()
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		m.Run(ctx)
		close(done)
	}()
	b.ReportAllocs()
	ts := int64(0)
	for b.Loop() {
		ts++
		in.Push(ctx, ts, "", &ev{0, 1})
	}
	in.Close()
	<-done
}

type discard struct{}

func (discard) Message(int64, *ev, bool) {}
func (discard) Advance(int64)            {}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Lateness: 0, QueueSize: 1, MaxPending: 1},
		{Lateness: time.Second, QueueSize: 0, MaxPending: 1},
		{Lateness: time.Second, QueueSize: 1, MaxPending: 0},
	} {
		if _, err := New[ev](cfg, discard{}); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestHalfFullWakes: while the merge sleeps until its pending live
// messages are due, a queue filling to half wakes it, so that a busy
// source is drained long before the lateness has passed.
func TestHalfFullWakes(t *testing.T) {
	m, _ := newTest(t, Config{Lateness: 30 * time.Second, QueueSize: 8, MaxPending: 1 << 10})
	src := m.Source("eth0")
	in := m.Input(src, Live, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	now := time.Now().UnixNano()
	in.Push(ctx, now, "", &ev{0, 0})
	for m.pending.Load() != 1 { // drained into the heap; the merge now sleeps for 30 s
		time.Sleep(time.Millisecond)
	}
	for round := range 5 {
		for n := range 4 { // half of the queue
			in.Push(ctx, now, "", &ev{round, n})
		}
		deadline := time.Now().Add(5 * time.Second)
		for in.head.Load() != in.tail.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: a half-full queue did not wake the merge within 5 s", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if got := m.pending.Load(); got != 21 || src.Dropped() != 0 {
		t.Errorf("pending %d, dropped %d; want 21 and 0", got, src.Dropped())
	}
}

// TestExactOrderedTies: workers that split one file between them push
// messages of equal capture time with the packet's number in the file
// (PushOrdered); the merge hands them on by that number, whichever worker
// pushed first and however the pushes interleave, and holds a message at
// the watermark until every worker is past it.
func TestExactOrderedTies(t *testing.T) {
	for _, cfg := range []Config{DefaultConfig(), {Lateness: time.Second, QueueSize: 2, MaxPending: 8}} {
		m, r := newTest(t, cfg)
		src := m.Source("file")
		a, b := m.Input(src, Exact, 0), m.Input(src, Exact, 0)
		m.Seal()
		done := make(chan struct{})
		go func() { m.Run(context.Background()); close(done) }()
		// Packet k (1..12) at time 10*(1+(k-1)/4): four per time. Odd
		// packets to a, even to b; a pushes all of its before b starts.
		var wg sync.WaitGroup
		for in, first := range map[*Input[ev]]int{a: 1, b: 2} {
			wg.Go(func() {
				if in == b {
					time.Sleep(20 * time.Millisecond)
				}
				for k := first; k <= 12; k += 2 {
					in.PushOrdered(context.Background(), int64(10*(1+(k-1)/4)), uint64(k), "", &ev{n: k})
				}
				in.Close()
			})
		}
		wg.Wait()
		<-done
		_, evs, _ := r.snapshot()
		var got []int
		for _, e := range evs {
			got = append(got, e.n)
		}
		if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; !slices.Equal(got, want) {
			t.Errorf("queue %d, pending %d: order %v, want %v", cfg.QueueSize, cfg.MaxPending, got, want)
		}
	}
}

// TestLiveFullWait: the producer of a full live input waits up to FullWait
// for room. With the merge running, a burst far above the queue's size is
// taken whole (the producer waits while the merge drains); with no merge,
// each message past the queue is dropped after FullWait.
func TestLiveFullWait(t *testing.T) {
	cfg := Config{Lateness: time.Second, QueueSize: 4, MaxPending: 1 << 10, FullWait: 20 * time.Millisecond}
	m, r := newTest(t, cfg)
	src := m.Source("eth0")
	in := m.Input(src, Live, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	now := time.Now().UnixNano()
	for n := range 1000 {
		if !in.Push(ctx, now+int64(n), "", &ev{0, n}) {
			t.Fatalf("message %d dropped with the merge running", n)
		}
	}
	if src.Dropped() != 0 {
		t.Errorf("dropped %d with the merge running, want 0", src.Dropped())
	}
	r.waitFor(t, 1000)

	stalled, _ := newTest(t, cfg)
	src = stalled.Source("eth1")
	in = stalled.Input(src, Live, 0) // nothing runs this merge
	start := time.Now()
	for n := range 6 {
		in.Push(context.Background(), now, "", &ev{0, n})
	}
	if src.Dropped() != 2 {
		t.Errorf("stalled merge: dropped %d, want 2", src.Dropped())
	}
	if d := time.Since(start); d < 2*cfg.FullWait {
		t.Errorf("stalled merge: the two drops took %v, want at least 2 x %v", d, cfg.FullWait)
	}
}

// TestExactProgress: an exact input that pushes no message but marks its
// progress (a capture file without SIP) does not hold the merge back: the
// other input's messages up to that progress are handed on while both are
// still open, as the reader of a looped file needs. The watermark is
// MinInt64 before the first advance.
func TestExactProgress(t *testing.T) {
	m, r := newTest(t, Config{Lateness: time.Second, QueueSize: 8, MaxPending: 1 << 10})
	if w := m.Watermark(); w != math.MinInt64 {
		t.Errorf("Watermark before the first advance = %d, want MinInt64", w)
	}
	src := m.Source("x")
	sip, empty := m.Input(src, Exact, 0), m.Input(src, Exact, 0)
	m.Seal()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	for i := 1; i <= 100; i++ {
		sip.Push(ctx, int64(i), "", &ev{0, i})
		if i%10 == 0 {
			empty.Progress(ctx, int64(i))
		}
	}
	// Released: what both inputs have passed (the last one at 100 waits,
	// as a message at the watermark itself may still have a peer).
	r.waitFor(t, 99)
	if w := m.Watermark(); w != 100 {
		t.Errorf("watermark %d, want 100", w)
	}
	sip.Close()
	empty.Close()
	<-done
	if times, _, _ := r.snapshot(); len(times) != 100 || !slices.IsSorted(times) {
		t.Errorf("%d messages, sorted %v; want 100 in order", len(times), slices.IsSorted(times))
	}
}

// TestClockStepKeepsOrder: an agent whose first message is within the
// clock threshold ahead (not corrected) and whose clock then steps 200 ms
// further ahead: the step is corrected, but never so far as to hand the
// agent's later messages on before its earlier ones, and the delays
// between its messages after the step are exact.
func TestClockStepKeepsOrder(t *testing.T) {
	cfg := Config{Lateness: time.Second, QueueSize: 64, MaxPending: 64}
	m, r := newTest(t, cfg)
	in := m.Input(m.Source("udp://:9060"), Live, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	ahead := int64(cfg.ClockThreshold()) - int64(10*time.Millisecond) // not corrected
	step := ahead + int64(200*time.Millisecond)                       // corrected
	var stamps []int64
	for k, off := range []int64{ahead, step, step, step} {
		if k > 1 {
			time.Sleep(time.Duration(20*k) * time.Millisecond)
		}
		stamps = append(stamps, time.Now().UnixNano()+off)
		in.Push(ctx, stamps[k], "agent", &ev{0, k})
	}
	r.waitFor(t, 4)
	times, evs, _ := r.snapshot()
	for k := range evs {
		if evs[k].n != k {
			t.Fatalf("order %v, want the agent's own", evs)
		}
	}
	if !slices.IsSorted(times) {
		t.Errorf("times go back: %v", times)
	}
	// The delays after the step are the agent's own.
	for k := 2; k < 4; k++ {
		if got, want := times[k]-times[k-1], stamps[k]-stamps[k-1]; got != want {
			t.Errorf("delay %d after the step %v, want %v", k-1, time.Duration(got), time.Duration(want))
		}
	}
}

// TestTimeModel: the clock threshold is a tenth of the lateness, at most
// 100 ms, the skew window twice it, the read interval a tenth of it (at
// least 1 µs) and the release step five read intervals.
func TestTimeModel(t *testing.T) {
	for _, tc := range []struct{ lateness, c, w, r, s time.Duration }{
		{time.Second, 100 * time.Millisecond, 200 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond},
		{10 * time.Second, 100 * time.Millisecond, 200 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond},
		{500 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond},
		{time.Microsecond, 100, 200, time.Microsecond, 5 * time.Microsecond},
	} {
		cfg := Config{Lateness: tc.lateness}
		if c, w := cfg.ClockThreshold(), cfg.SkewWindow(); c != tc.c || w != tc.w {
			t.Errorf("lateness %v: threshold %v, window %v; want %v, %v", tc.lateness, c, w, tc.c, tc.w)
		}
		if r, s := cfg.ReadInterval(), cfg.releaseStep(); r != tc.r || s != tc.s {
			t.Errorf("lateness %v: read interval %v, release step %v; want %v, %v", tc.lateness, r, s, tc.r, tc.s)
		}
	}
}

// TestUntilTick: the time to the next multiple of the step since the
// epoch, a whole step from a multiple, and for times before the epoch.
func TestUntilTick(t *testing.T) {
	for _, tc := range []struct {
		now  int64
		step time.Duration
		want time.Duration
	}{
		{0, 10, 10},
		{1, 10, 9},
		{9, 10, 1},
		{10, 10, 10},
		{1_700_000_000_123_456_789, 10 * time.Millisecond, 6_543_211},
		{-3, 10, 3},
	} {
		if got := untilTick(tc.now, tc.step); got != tc.want {
			t.Errorf("untilTick(%d, %v) = %v, want %v", tc.now, tc.step, got, tc.want)
		}
	}
}

// TestPushReceived: a live input takes the time of receipt its producer
// hands on (one reading of the wall clock per batch) for the clock's
// offset estimate: a clock 5 s ahead of it is estimated exactly 5 s
// ahead, and its messages corrected by that, in the order pushed.
func TestPushReceived(t *testing.T) {
	m, r := newTest(t, Config{Lateness: 100 * time.Millisecond, QueueSize: 64, MaxPending: 64})
	src := m.Source("udp://:9060")
	in := m.Input(src, Live, 0)
	received := time.Now().UnixNano()
	const ahead = int64(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for n := range 3 {
		in.PushReceived(ctx, received+ahead+int64(n), 0, received, "agent", &ev{0, n})
	}
	if o, ok := src.Offset("agent"); !ok || o != ahead {
		t.Errorf("offset %v (%v), want exactly %v", time.Duration(o), ok, time.Duration(ahead))
	}
	go m.Run(ctx)
	r.waitFor(t, 3)
	times, evs, _ := r.snapshot()
	for n := range 3 {
		if times[n] != received+int64(n) || evs[n].n != n {
			t.Errorf("message %d: %+v at %d, want n %d at %d", n, evs[n], times[n], n, received+int64(n))
		}
	}
}

// TestPushReceivedAllocs: pushing with a time of receipt allocates nothing
// once the clock has been seen.
func TestPushReceivedAllocs(t *testing.T) {
	m, _ := newTest(t, Config{Lateness: time.Second, QueueSize: 1 << 12, MaxPending: 1 << 12})
	in := m.Input(m.Source("a"), Live, 0)
	ctx := context.Background()
	now := time.Now().UnixNano()
	in.PushReceived(ctx, now, 0, now, "agent", &ev{0, 0})
	n := 0
	if a := testing.AllocsPerRun(1000, func() {
		n++
		in.PushReceived(ctx, now+int64(n), 0, now+int64(n), "agent", &ev{0, n})
		if n%1024 == 0 {
			in.head.Store(in.tail.Load()) // drained, as the merge would
		}
	}); a != 0 {
		t.Errorf("%v allocations per push, want 0", a)
	}
}
