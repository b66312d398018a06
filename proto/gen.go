// Package proto holds the .proto sources of cmmsflow and the Go generated
// from them. Run `make generate` after editing a .proto file.
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative cmmsflow/events/v1/events.proto
