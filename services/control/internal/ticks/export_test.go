package ticks

import "time"

// SetNow sets the watcher's clock (tests).
func SetNow(w *Watcher, now func() time.Time) { w.now = now }
