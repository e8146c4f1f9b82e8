package main

import (
	"fmt"
	"io"
	"math"
	"time"
)

// progressLine shows, on a terminal, how far the report command has read:
// a line on stderr, rewritten in place every so often once reading has
// taken a while, and erased when it ends. A nil *progressLine shows
// nothing.
type progressLine struct {
	w     io.Writer
	after time.Duration // nothing is shown before
	every time.Duration // between two updates

	stop, done chan struct{}
}

// start shows the progress of rd until end is called.
func (pl *progressLine) start(rd *reading) {
	if pl == nil {
		return
	}
	pl.stop, pl.done = make(chan struct{}), make(chan struct{})
	began := time.Now()
	go func() {
		defer close(pl.done)
		wait := time.NewTimer(pl.after)
		defer wait.Stop()
		select {
		case <-pl.stop:
			return
		case <-wait.C:
		}
		tick := time.NewTicker(pl.every)
		defer tick.Stop()
		for {
			fmt.Fprintf(pl.w, "\r\x1b[K%s", progressText(rd.packets(), rd.latest(), time.Since(began)))
			select {
			case <-pl.stop:
				fmt.Fprint(pl.w, "\r\x1b[K")
				return
			case <-tick.C:
			}
		}
	}()
}

// end erases the line, once it is shown, and returns when it is.
func (pl *progressLine) end() {
	if pl == nil || pl.stop == nil {
		return
	}
	close(pl.stop)
	<-pl.done
}

// progressText is the text of the progress line: packets read, the
// capture time reached (ns, math.MinInt64 before the first report of a
// file) and the time taken.
func progressText(packets uint64, latest int64, took time.Duration) string {
	at := ""
	if latest != math.MinInt64 {
		at = ", capture time " + time.Unix(0, latest).UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	return fmt.Sprintf("%s report: %d packets read%s, %s", program, packets, at, took.Round(time.Second))
}
