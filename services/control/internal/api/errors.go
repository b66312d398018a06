package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// apiError is an error the caller may see, with its gRPC code. Handlers
// return these (or any other error, which the caller sees as "internal
// error"); ErrorInterceptor turns them into gRPC status, and the HTTP gateway
// turns the status into the HTTP status (404, 400, 409, ...).
type apiError struct {
	code codes.Code
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code codes.Code, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error { return errorf(codes.NotFound, format, args...) }
func invalid(format string, args ...any) error  { return errorf(codes.InvalidArgument, format, args...) }

// toStatus is the one place an error becomes a gRPC status.
func toStatus(err error) (*status.Status, bool) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return status.New(ae.code, ae.msg), true
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request cancelled"), true
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded"), true
	}
	if s, ok := status.FromError(err); ok {
		return s, true
	}
	return status.New(codes.Internal, "internal error"), false
}

// ErrorInterceptor maps the errors of ControlService handlers to gRPC status;
// unexpected errors are logged and reported as "internal error" only.
func ErrorInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		s, expected := toStatus(err)
		if !expected {
			log.ErrorContext(ctx, "api call failed", "method", info.FullMethod, "error", err)
		}
		return nil, s.Err()
	}
}
