package terraformcheck

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// references reports every reference, anywhere in m and the local modules it
// calls (preconditions and outputs included, which the evaluation may never
// reach), to a local, variable, data source, resource or module output the
// module does not define: what `terraform validate` would refuse, checked
// without a provider.
func (c *checker) references(m *Module) {
	for _, body := range m.Bodies {
		_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if e, ok := n.(*hclsyntax.ScopeTraversalExpr); ok {
				if msg := undefined(m, e.Traversal); msg != "" {
					c.fail("%s: %s", e.SrcRange, msg)
				}
			}
			return nil
		})
	}
	for _, call := range m.Calls {
		if call.Child != nil {
			c.references(call.Child)
		}
	}
}

// undefined says what the traversal names that m does not define ("" when
// it is defined, or not a reference this checks).
func undefined(m *Module, t hcl.Traversal) string {
	names := make([]string, 0, 3)
	for _, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			names = append(names, s.Name)
		case hcl.TraverseAttr:
			names = append(names, s.Name)
		}
		if len(names) == 3 {
			break
		}
	}
	if len(names) < 2 {
		return ""
	}
	switch root := names[0]; {
	case root == "local":
		if _, ok := m.Locals[names[1]]; !ok {
			return "undefined local." + names[1]
		}
	case root == "var":
		if _, ok := m.Variables[names[1]]; !ok {
			return "undefined var." + names[1]
		}
	case root == "data" && len(names) == 3:
		if !hasBlock(m.Data, names[1], names[2]) {
			return fmt.Sprintf("undefined data.%s.%s", names[1], names[2])
		}
	case root == "module":
		return undefinedOutput(m, names)
	case strings.HasPrefix(root, "google_") || root == "terraform_data":
		if !hasBlock(m.Resources, root, names[1]) {
			return fmt.Sprintf("undefined resource %s.%s", root, names[1])
		}
	}
	return ""
}

// undefinedOutput checks module.<call>.<output>.
func undefinedOutput(m *Module, names []string) string {
	for _, call := range m.Calls {
		if call.Name != names[1] {
			continue
		}
		if call.Child == nil || len(names) < 3 {
			return ""
		}
		if _, ok := call.Child.Outputs[names[2]]; !ok {
			return fmt.Sprintf("module.%s has no output %q", names[1], names[2])
		}
		return ""
	}
	return "undefined module." + names[1]
}

func hasBlock(blocks []*Block, typ, name string) bool {
	for _, b := range blocks {
		if b.Type == typ && b.Name == name {
			return true
		}
	}
	return false
}
