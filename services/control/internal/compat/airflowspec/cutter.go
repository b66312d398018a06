package airflowspec

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// prose are the keys of OpenAPI objects that document and do not constrain:
// the cut drops them (and every x- extension). Response objects keep their
// description, which OpenAPI requires.
var prose = map[string]bool{
	"description": true, "summary": true, "externalDocs": true, "tags": true,
	"example": true, "examples": true,
}

// names are the keys whose values map names (property names, status codes,
// media types…) to objects: those names are kept whatever they are.
var names = map[string]bool{
	"properties": true, "content": true, "headers": true, "encoding": true,
	"links": true, "callbacks": true, "variables": true,
}

// verbatim are the keys whose values are data, copied as they are.
var verbatim = map[string]bool{"default": true, "enum": true}

// component names an entry of components, e.g. schemas/DAG.
type component struct{ kind, name string }

// cutter copies the kept objects without their prose and collects the
// components they refer to.
type cutter struct {
	src    *yaml.Node // the source's components
	kept   map[component]*yaml.Node
	queue  []component
	errors []string
}

func newCutter(components *yaml.Node) *cutter {
	return &cutter{src: components, kept: map[component]*yaml.Node{}}
}

// object copies the OpenAPI object (or list of objects) n without its prose;
// response tells that n is a response object.
func (c *cutter) object(n *yaml.Node, response bool) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind == yaml.ScalarNode {
		return clone(n)
	}
	out := &yaml.Node{Kind: n.Kind, Tag: n.Tag}
	if n.Kind == yaml.SequenceNode {
		for _, item := range n.Content {
			out.Content = append(out.Content, c.object(item, false))
		}
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i].Value, resolve(n.Content[i+1])
		switch {
		case key == "description" && response:
			add(out, key, clone(v))
		case prose[key] || strings.HasPrefix(key, "x-"):
		case key == "$ref":
			c.ref(v.Value)
			add(out, key, clone(v))
		case key == "security":
			c.security(v)
			add(out, key, clone(v))
		case key == "mapping": // a discriminator's: values name schemas
			c.mapping(v)
			add(out, key, clone(v))
		case verbatim[key]:
			add(out, key, clone(v))
		case key == "responses":
			add(out, key, c.names(v, true))
		case names[key]:
			add(out, key, c.names(v, false))
		default:
			add(out, key, c.object(v, false))
		}
	}
	return out
}

// names copies a map of names to objects, keeping every name.
func (c *cutter) names(n *yaml.Node, response bool) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return c.object(n, false)
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag}
	for i := 0; i+1 < len(n.Content); i += 2 {
		add(out, n.Content[i].Value, c.object(n.Content[i+1], response))
	}
	return out
}

// ref queues the component a $ref points to; only local references to
// components can be cut.
func (c *cutter) ref(ref string) {
	parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
	if !strings.HasPrefix(ref, "#/components/") || len(parts) != 2 {
		c.errors = append(c.errors, fmt.Sprintf("unsupported $ref %q (only #/components/<kind>/<name>)", ref))
		return
	}
	unescape := strings.NewReplacer("~1", "/", "~0", "~")
	c.need(component{parts[0], unescape.Replace(parts[1])})
}

// security queues the schemes of a list of security requirements.
func (c *cutter) security(n *yaml.Node) {
	for _, req := range n.Content {
		for i := 0; i+1 < len(req.Content); i += 2 {
			c.need(component{"securitySchemes", req.Content[i].Value})
		}
	}
}

// mapping queues the schemas a discriminator's mapping names (by $ref or by
// schema name).
func (c *cutter) mapping(n *yaml.Node) {
	for i := 1; i < len(n.Content); i += 2 {
		if v := n.Content[i].Value; strings.HasPrefix(v, "#") {
			c.ref(v)
		} else {
			c.need(component{"schemas", v})
		}
	}
}

func (c *cutter) need(k component) {
	if _, ok := c.kept[k]; !ok {
		c.kept[k] = nil
		c.queue = append(c.queue, k)
	}
}

// closure copies every queued component, and those they refer to in turn,
// into a components object.
func (c *cutter) closure() (*yaml.Node, error) {
	for len(c.queue) > 0 {
		k := c.queue[0]
		c.queue = c.queue[1:]
		src := get(get(c.src, k.kind), k.name)
		if src == nil {
			c.errors = append(c.errors, fmt.Sprintf("components/%s/%s is referred to but not in the source", k.kind, k.name))
			continue
		}
		c.kept[k] = c.object(src, k.kind == "responses")
	}
	if len(c.errors) > 0 {
		return nil, fmt.Errorf("airflowspec: %s", strings.Join(c.errors, "; "))
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	kinds := map[string]*yaml.Node{}
	for k, v := range c.kept {
		if kinds[k.kind] == nil {
			kinds[k.kind] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			add(out, k.kind, kinds[k.kind])
		}
		add(kinds[k.kind], k.name, v)
	}
	return out, nil
}
