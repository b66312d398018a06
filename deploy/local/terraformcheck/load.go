// Package terraformcheck proves deploy/terraform consistent with the Go code:
// it parses the Terraform with the HCL library, evaluates just enough of it
// (literal values, variables' defaults, locals, for_each, the few functions
// the configuration uses, module calls with their arguments) and compares the
// result with the event registry (libs/events) and the cron table and kick
// message (scheduler). It also checks what faces the internet (control is
// private unless control_public is set, behind an HTTPS load balancer with
// IAP) and that the alert policies and the dashboard exist, on the
// Prometheus names the services' metrics are exported under. Values only known after apply (ids, emails, URIs) are
// stood in for by reference strings ("ref:google_pubsub_topic.event[x].id")
// that the checks resolve back to the resource instance they name.
//
// It also renders deploy/terraform/registry.tf, the registry as Terraform
// data: go test ./deploy/local/terraformcheck -update rewrites it.
package terraformcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Module is one Terraform module directory, parsed.
type Module struct {
	Dir       string
	Variables map[string]*hclsyntax.Block
	Locals    map[string]*hclsyntax.Attribute
	Outputs   map[string]*hclsyntax.Block
	Resources []*Block // managed resources, in file order
	Data      []*Block
	Calls     []*Call
	Bodies    []*hclsyntax.Body // each file's, for references.go
}

// Block is a resource or data block.
type Block struct {
	Type, Name string
	Body       *hclsyntax.Body
	Range      hcl.Range
}

// Addr is type.name.
func (b *Block) Addr() string { return b.Type + "." + b.Name }

// Call is a module block with its parsed child module.
type Call struct {
	Name   string
	Source string
	Body   *hclsyntax.Body
	Child  *Module
}

// LoadModule parses every .tf file of dir and, recursively, the local modules
// it calls.
func LoadModule(dir string) (*Module, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(abs, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .tf files", dir)
	}
	sort.Strings(files)
	m := &Module{Dir: abs, Variables: map[string]*hclsyntax.Block{}, Locals: map[string]*hclsyntax.Attribute{},
		Outputs: map[string]*hclsyntax.Block{}}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse: %s", diags.Error())
		}
		body := file.Body.(*hclsyntax.Body)
		m.Bodies = append(m.Bodies, body)
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				m.Variables[b.Labels[0]] = b
			case "output":
				m.Outputs[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.Locals[name]; dup {
						return nil, fmt.Errorf("%s: local.%s defined twice", b.DefRange(), name)
					}
					m.Locals[name] = a
				}
			case "resource":
				m.Resources = append(m.Resources, &Block{Type: b.Labels[0], Name: b.Labels[1], Body: b.Body, Range: b.DefRange()})
			case "data":
				m.Data = append(m.Data, &Block{Type: b.Labels[0], Name: b.Labels[1], Body: b.Body, Range: b.DefRange()})
			case "module":
				c := &Call{Name: b.Labels[0], Body: b.Body}
				src, ok := b.Body.Attributes["source"]
				if !ok {
					return nil, fmt.Errorf("%s: module %q has no source", b.DefRange(), c.Name)
				}
				v, diags := src.Expr.Value(nil)
				if diags.HasErrors() {
					return nil, fmt.Errorf("%s: module source: %s", b.DefRange(), diags.Error())
				}
				c.Source = v.AsString()
				if strings.HasPrefix(c.Source, "./") || strings.HasPrefix(c.Source, "../") {
					child, err := LoadModule(filepath.Join(abs, c.Source))
					if err != nil {
						return nil, fmt.Errorf("module %q: %w", c.Name, err)
					}
					c.Child = child
				}
				m.Calls = append(m.Calls, c)
			}
		}
	}
	return m, nil
}

// readFile is os.ReadFile, replaceable in tests.
var readFile = os.ReadFile
