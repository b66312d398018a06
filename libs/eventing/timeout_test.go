package eventing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

func TestTimeoutBoundsWhatIsBelow(t *testing.T) {
	next := eventing.Timeout(20 * time.Millisecond)(func(ctx context.Context, _ *eventing.Delivery) error {
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	if err := next(context.Background(), delivery(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
}
