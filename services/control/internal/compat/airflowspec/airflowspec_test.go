package airflowspec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"
)

const source = `
openapi: 3.0.3
info:
  title: Things
  description: Long prose.
  version: "1.0"
  license: {name: Apache 2.0}
servers:
  - url: /api/v1
    description: The API.
security: []
tags: [{name: Thing}]
paths:
  /things/{id}:
    summary: A thing.
    parameters:
      - $ref: '#/components/parameters/ID'
    get:
      summary: Get a thing
      description: Gets it.
      operationId: get_thing
      tags: [Thing]
      x-openapi-router-controller: things.endpoint
      responses:
        "200":
          description: Success.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Thing'}
              example: {description: x}
        "404": {$ref: '#/components/responses/NotFound'}
    delete:
      operationId: delete_thing
      responses:
        "204": {description: Gone., content: {application/json: {schema: {$ref: '#/components/schemas/Unused'}}}}
  /others:
    get:
      operationId: get_others
      responses:
        "200": {description: Success.}
components:
  parameters:
    ID: {name: id, in: path, required: true, description: The id., schema: {type: string}}
  responses:
    NotFound:
      description: Not found.
      content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  schemas:
    Thing:
      description: A thing.
      type: object
      externalDocs: {url: https://example.com}
      properties:
        description: {type: string, nullable: true, readOnly: true, description: What it is.}
        kind: {$ref: '#/components/schemas/Kind'}
        pet: {$ref: '#/components/schemas/Pet'}
    Kind: {type: string, enum: [a, b], default: a, example: a, x-internal: true}
    Pet:
      oneOf: [{$ref: '#/components/schemas/Cat'}]
      discriminator: {propertyName: kind, mapping: {dog: Dog}}
    Cat: {type: object, properties: {kind: {type: string}}}
    Dog: {type: object, properties: {kind: {type: string}}}
    Error: {type: object, required: [title], properties: {title: {type: string}}}
    Unused: {type: string}
  securitySchemes:
    Basic: {type: http, scheme: basic}
`

// want is the cut of source for GET /things/{id}.
const want = `
openapi: 3.0.3
info: {title: Things, version: "1.0"}
servers: [{url: /api/v1}]
security: []
paths:
  /things/{id}:
    parameters: [{$ref: '#/components/parameters/ID'}]
    get:
      operationId: get_thing
      responses:
        "200":
          description: Success.
          content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}
        "404": {$ref: '#/components/responses/NotFound'}
components:
  parameters:
    ID: {name: id, in: path, required: true, schema: {type: string}}
  responses:
    NotFound:
      description: Not found.
      content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  schemas:
    Thing:
      type: object
      properties:
        description: {type: string, nullable: true, readOnly: true}
        kind: {$ref: '#/components/schemas/Kind'}
        pet: {$ref: '#/components/schemas/Pet'}
    Kind: {type: string, enum: [a, b], default: a}
    Pet:
      oneOf: [{$ref: '#/components/schemas/Cat'}]
      discriminator: {propertyName: kind, mapping: {dog: Dog}}
    Cat: {type: object, properties: {kind: {type: string}}}
    Dog: {type: object, properties: {kind: {type: string}}}
    Error: {type: object, required: [title], properties: {title: {type: string}}}
`

var getThing = Operation{"GET", "/things/{id}"}

func TestCutKeepsTheOperationsAndWhatTheyReach(t *testing.T) {
	out, err := Cut([]byte(source), []Operation{getThing})
	if err != nil {
		t.Fatal(err)
	}
	var got, exp map[string]any
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("cut:\n%s\nwant:\n%s", out, want)
	}
	doc, err := openapi3.NewLoader().LoadFromData(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the cut is not a valid OpenAPI document: %v", err)
	}
}

func TestCutFailsOnAMissingOperation(t *testing.T) {
	_, err := Cut([]byte(source), []Operation{getThing, {"POST", "/things/{id}"}, {"GET", "/nope"}})
	if err == nil || !strings.Contains(err.Error(), "POST /things/{id}, GET /nope") {
		t.Fatalf("err = %v, want both missing operations named", err)
	}
}

func TestCutFailsOnAnUnresolvableRef(t *testing.T) {
	for _, ref := range []string{"#/components/schemas/Nope", "other.yaml#/components/schemas/Thing"} {
		src := strings.Replace(source, "#/components/schemas/Kind", ref, 1)
		if _, err := Cut([]byte(src), []Operation{getThing}); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(ref, "#/components/")) {
			t.Errorf("%s: err = %v", ref, err)
		}
	}
}

func TestCutIsDeterministic(t *testing.T) {
	ops := []Operation{getThing, {"GET", "/others"}, {"DELETE", "/things/{id}"}}
	first, err := Cut([]byte(source), ops)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		again, err := Cut([]byte(source), []Operation{ops[2], ops[1], ops[0], ops[1]})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("two cuts differ:\n%s\n---\n%s", first, again)
		}
	}
	sum := sha256.Sum256([]byte(source))
	if got, ok := SourceSHA256(first); !ok || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("header source hash %q, %v; want %x\n%s", got, ok, sum, first)
	}
	if !strings.HasPrefix(string(first), "# Code generated by "+Generator+"; DO NOT EDIT.\n") {
		t.Fatalf("no generated-file header:\n%s", first)
	}
}
