package controlv1

import _ "embed"

// OpenAPI is the OpenAPI 2.0 document of the HTTP/JSON API, generated from
// control.proto by protoc-gen-openapiv2.
//
//go:embed control.swagger.json
var OpenAPI []byte
