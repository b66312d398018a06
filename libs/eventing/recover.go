package eventing

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/cmmsflow/cmmsflow/libs/logging"
)

// Recover is the middleware that turns a panic below it into a permanent
// error: the same input would panic again.
//
// The error names the panic's value only. It becomes the step's error, which
// reaches the dead letter, the alert emails and webhooks and the admin page,
// so the stack trace (file paths, goroutines, the values in the frames) goes
// to the delivery's log alone, at error level.
func Recover() Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) (err error) {
			defer func() {
				if p := recover(); p != nil {
					logging.From(ctx).ErrorContext(ctx, "handler panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					err = Permanent(fmt.Errorf("handler panic: %v (stack trace in the service log)", p))
				}
			}()
			return next(ctx, d)
		}
	}
}
