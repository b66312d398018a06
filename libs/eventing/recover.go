package eventing

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Recover is the middleware that turns a panic below it into a permanent
// error: the same input would panic again.
func Recover() Middleware {
	return func(next Next) Next {
		return func(ctx context.Context, d *Delivery) (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = Permanent(fmt.Errorf("handler panic: %v\n%s", p, debug.Stack()))
				}
			}()
			return next(ctx, d)
		}
	}
}
