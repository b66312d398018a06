// Package proto holds the .proto sources of cmmsflow and the Go generated
// from them. Run `make generate` after editing a .proto file.
//
// third_party/ holds the imported google.api and openapiv2 option sources;
// their Go packages come from upstream modules (the M options below).
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative cmmsflow/events/v1/events.proto
//go:generate protoc --proto_path=. --proto_path=third_party --go_out=. --go_opt=paths=source_relative --go_opt=Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations --go_opt=Mgoogle/api/http.proto=google.golang.org/genproto/googleapis/api/annotations --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations --go-grpc_opt=Mgoogle/api/http.proto=google.golang.org/genproto/googleapis/api/annotations --grpc-gateway_out=. --grpc-gateway_opt=paths=source_relative --grpc-gateway_opt=Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations --grpc-gateway_opt=Mgoogle/api/http.proto=google.golang.org/genproto/googleapis/api/annotations --openapiv2_out=. --openapiv2_opt=json_names_for_fields=false,disable_default_errors=false,Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations,Mgoogle/api/http.proto=google.golang.org/genproto/googleapis/api/annotations cmmsflow/control/v1/control.proto
