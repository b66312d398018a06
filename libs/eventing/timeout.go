package eventing

import (
	"context"
	"time"
)

// Timeout is the middleware that bounds the processing below it to d.
func Timeout(d time.Duration) Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, dl *Delivery) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, dl)
		}
	}
}
