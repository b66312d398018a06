package terraformcheck

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.yaml.in/yaml/v3"
)

// computed lists the attributes a provider fills in on apply; an instance's
// value carries a reference string for each one its configuration does not set.
var computed = []string{"id", "name", "email", "uri", "url", "member", "number", "self_link", "secret_id",
	"project", "project_id", "location", "unique_id", "connection_name", "account_id"}

// Instance is one instance of a resource (for_each key, count index or none).
type Instance struct {
	Block *Block
	Key   cty.Value // cty.NilVal without for_each or count
	Each  cty.Value // each.value
	Value cty.Value // the object other expressions see
}

// Ref is the reference string standing in for attr of the instance.
func (in *Instance) Ref(attr string) string { return "ref:" + in.addr() + "." + attr }

func (in *Instance) addr() string {
	switch {
	case in.Key == cty.NilVal:
		return in.Block.Addr()
	case in.Key.Type() == cty.String:
		return in.Block.Addr() + "[" + in.Key.AsString() + "]"
	default:
		bf := in.Key.AsBigFloat()
		return in.Block.Addr() + "[" + bf.String() + "]"
	}
}

// Eval is a module evaluated with given variables.
type Eval struct {
	Mod       *Module
	Vars      map[string]cty.Value
	Locals    map[string]cty.Value
	Instances map[string][]*Instance // by resource address
	Children  map[string]*Eval       // module calls, by name
	Args      map[string]map[string]cty.Value
	Outputs   map[string]cty.Value
	data      map[string]cty.Value
	snapshot  *hcl.EvalContext
	fns       map[string]function.Function
}

// Evaluate evaluates m with vars (variables without a value take their
// default, or a "var.<name>" placeholder string when they have none).
func Evaluate(m *Module, vars map[string]cty.Value) *Eval {
	e := &Eval{Mod: m, Vars: map[string]cty.Value{}, Locals: map[string]cty.Value{},
		Instances: map[string][]*Instance{}, Children: map[string]*Eval{}, Args: map[string]map[string]cty.Value{},
		Outputs: map[string]cty.Value{}, data: map[string]cty.Value{}}
	for name, b := range m.Variables {
		if v, ok := vars[name]; ok && v != cty.NilVal && !v.IsNull() {
			e.Vars[name] = v
			continue
		}
		v := cty.StringVal("var." + name)
		if d, ok := b.Body.Attributes["default"]; ok {
			if dv, diags := d.Expr.Value(nil); !diags.HasErrors() {
				v = dv
			}
		}
		if t, ok := b.Body.Attributes["type"]; ok {
			v = withOptionalDefaults(v, t.Expr)
		}
		e.Vars[name] = v
	}
	for _, d := range m.Data {
		attrs := map[string]cty.Value{}
		for _, a := range computed {
			attrs[a] = cty.StringVal("ref:data." + d.Addr() + "." + a)
		}
		e.setData(d, cty.ObjectVal(attrs))
	}
	for name := range m.Locals {
		e.Locals[name] = cty.DynamicVal
	}
	// Locals, resources and modules refer to each other: evaluate to a fixed
	// point (a handful of rounds is plenty for a configuration without cycles).
	prev := -1
	for range 10 {
		e.refresh()
		ctx := e.snapshot
		for name, a := range m.Locals {
			if v, diags := a.Expr.Value(ctx); !diags.HasErrors() {
				e.Locals[name] = v
			}
		}
		e.refresh()
		e.evalResources()
		e.refresh()
		e.evalCalls()
		if p := e.progress(); p == prev {
			break
		} else {
			prev = p
		}
	}
	e.refresh()
	for name, o := range m.Outputs {
		if a, ok := o.Body.Attributes["value"]; ok {
			if v, diags := a.Expr.Value(e.snapshot); !diags.HasErrors() {
				e.Outputs[name] = v
			} else {
				e.Outputs[name] = cty.DynamicVal
			}
		}
	}
	return e
}

// progress counts what is known, to stop once a round adds nothing.
func (e *Eval) progress() int {
	n := len(e.Instances)
	for _, v := range e.Locals {
		if v.IsWhollyKnown() {
			n++
		}
	}
	for _, ins := range e.Instances {
		for _, in := range ins {
			if in.Value != cty.NilVal {
				n += len(in.Value.Type().AttributeTypes())
			}
		}
	}
	for _, c := range e.Children {
		n += c.progress()
		for _, v := range c.Outputs {
			if v.IsWhollyKnown() {
				n++
			}
		}
	}
	return n
}

// withOptionalDefaults fills an object variable's optional(type, default)
// attributes that v lacks.
func withOptionalDefaults(v cty.Value, typ hcl.Expression) cty.Value {
	call, ok := typ.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "object" || len(call.Args) != 1 || !v.Type().IsObjectType() {
		return v
	}
	obj, ok := call.Args[0].(*hclsyntax.ObjectConsExpr)
	if !ok {
		return v
	}
	attrs := v.AsValueMap()
	if attrs == nil {
		attrs = map[string]cty.Value{}
	}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() {
			name := hcl.ExprAsKeyword(item.KeyExpr)
			if name == "" {
				continue
			}
			k = cty.StringVal(name)
		}
		if _, set := attrs[k.AsString()]; set {
			continue
		}
		if opt, ok := item.ValueExpr.(*hclsyntax.FunctionCallExpr); ok && opt.Name == "optional" && len(opt.Args) == 2 {
			if dv, diags := opt.Args[1].Value(nil); !diags.HasErrors() {
				attrs[k.AsString()] = dv
			}
		}
	}
	return cty.ObjectVal(attrs)
}

func (e *Eval) setData(d *Block, v cty.Value) {
	byType := map[string]cty.Value{}
	if cur, ok := e.data[d.Type]; ok {
		byType = cur.AsValueMap()
	}
	byType[d.Name] = v
	e.data[d.Type] = cty.ObjectVal(byType)
}

// ctx is the evaluation context, with each.key and each.value when in is
// set. The variables are built once per round (snapshot) and shared.
func (e *Eval) ctx(in *Instance) *hcl.EvalContext {
	if e.snapshot == nil {
		e.refresh()
	}
	if in == nil || in.Key == cty.NilVal {
		return e.snapshot
	}
	vars := make(map[string]cty.Value, len(e.snapshot.Variables)+1)
	for k, v := range e.snapshot.Variables {
		vars[k] = v
	}
	if in.Key.Type() == cty.Number {
		vars["count"] = cty.ObjectVal(map[string]cty.Value{"index": in.Key})
	} else {
		vars["each"] = cty.ObjectVal(map[string]cty.Value{"key": in.Key, "value": in.Each})
	}
	return &hcl.EvalContext{Variables: vars, Functions: e.snapshot.Functions}
}

// refresh rebuilds the shared variables from what is known now.
func (e *Eval) refresh() {
	vars := map[string]cty.Value{
		"var":    objOrEmpty(e.Vars),
		"local":  objOrEmpty(e.Locals),
		"path":   cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(e.Mod.Dir), "root": cty.StringVal(e.Mod.Dir), "cwd": cty.StringVal(e.Mod.Dir)}),
		"data":   objOrEmpty(e.data),
		"module": e.moduleValues(),
	}
	byType := map[string]map[string]cty.Value{}
	for _, r := range e.Mod.Resources {
		if byType[r.Type] == nil {
			byType[r.Type] = map[string]cty.Value{}
		}
		byType[r.Type][r.Name] = e.resourceValue(r)
	}
	for t, names := range byType {
		vars[t] = cty.ObjectVal(names)
	}
	fns := e.fns
	if fns == nil {
		fns = functions(e.Mod.Dir)
		e.fns = fns
	}
	e.snapshot = &hcl.EvalContext{Variables: vars, Functions: fns}
}

func objOrEmpty(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// resourceValue is what `type.name` evaluates to: the single instance's
// object, an object of instances by for_each key, or a tuple for count.
func (e *Eval) resourceValue(r *Block) cty.Value {
	ins, ok := e.Instances[r.Addr()]
	if !ok {
		return cty.DynamicVal
	}
	if _, each := r.Body.Attributes["for_each"]; each {
		m := map[string]cty.Value{}
		for _, in := range ins {
			m[in.Key.AsString()] = in.Value
		}
		return objOrEmpty(m)
	}
	if _, count := r.Body.Attributes["count"]; count {
		vals := make([]cty.Value, len(ins))
		for i, in := range ins {
			vals[i] = in.Value
		}
		if len(vals) == 0 {
			return cty.EmptyTupleVal
		}
		return cty.TupleVal(vals)
	}
	if len(ins) == 1 {
		return ins[0].Value
	}
	return cty.DynamicVal
}

func (e *Eval) evalResources() {
	for _, r := range e.Mod.Resources {
		ins, ok := e.instances(r)
		if !ok {
			continue
		}
		for _, in := range ins {
			attrs := map[string]cty.Value{}
			ctx := e.ctx(in)
			for name, a := range r.Body.Attributes {
				if name == "for_each" || name == "count" || name == "depends_on" {
					continue
				}
				if v, diags := a.Expr.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
					attrs[name] = v
				}
			}
			for _, c := range computed {
				if _, set := attrs[c]; !set {
					attrs[c] = cty.StringVal(in.Ref(c))
				}
			}
			in.Value = cty.ObjectVal(attrs)
		}
		e.Instances[r.Addr()] = ins
	}
}

// instances expands a resource's for_each or count; false when they cannot
// be evaluated yet.
func (e *Eval) instances(r *Block) ([]*Instance, bool) {
	ctx := e.ctx(nil)
	if fe, ok := r.Body.Attributes["for_each"]; ok {
		v, diags := fe.Expr.Value(ctx)
		if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
			return nil, false
		}
		var ins []*Instance
		switch {
		case v.Type().IsObjectType() || v.Type().IsMapType():
			m := v.AsValueMap()
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				ins = append(ins, &Instance{Block: r, Key: cty.StringVal(k), Each: m[k]})
			}
		case v.Type().IsSetType() || v.Type().IsListType() || v.Type().IsTupleType():
			for _, el := range v.AsValueSlice() {
				if el.Type() != cty.String {
					return nil, false
				}
				ins = append(ins, &Instance{Block: r, Key: el, Each: el})
			}
		default:
			return nil, false
		}
		return ins, true
	}
	if c, ok := r.Body.Attributes["count"]; ok {
		v, diags := c.Expr.Value(ctx)
		if diags.HasErrors() || !v.IsKnown() || v.Type() != cty.Number {
			return nil, false
		}
		n, _ := v.AsBigFloat().Int64()
		ins := make([]*Instance, n)
		for i := range ins {
			ins[i] = &Instance{Block: r, Key: cty.NumberIntVal(int64(i))}
		}
		return ins, true
	}
	return []*Instance{{Block: r, Key: cty.NilVal}}, true
}

// evalCalls evaluates each module call's arguments and, for a local module,
// the child module with them.
func (e *Eval) evalCalls() {
	ctx := e.ctx(nil)
	for _, c := range e.Mod.Calls {
		args := map[string]cty.Value{}
		for name, a := range c.Body.Attributes {
			switch name {
			case "source", "depends_on", "version", "providers", "for_each", "count":
				continue
			}
			if v, diags := a.Expr.Value(ctx); !diags.HasErrors() {
				args[name] = v
			} else {
				args[name] = cty.DynamicVal
			}
		}
		e.Args[c.Name] = args
		if c.Child != nil {
			e.Children[c.Name] = Evaluate(c.Child, args)
		}
	}
}

func (e *Eval) moduleValues() cty.Value {
	m := map[string]cty.Value{}
	for _, c := range e.Mod.Calls {
		outs := map[string]cty.Value{}
		if child, ok := e.Children[c.Name]; ok {
			for k, v := range child.Outputs {
				outs[k] = v
			}
		}
		m[c.Name] = objOrEmpty(outs)
	}
	return objOrEmpty(m)
}

// Attr evaluates the attribute at path (block types, then the attribute
// name) in the instance's body: nil when a block or the attribute is absent.
func (e *Eval) Attr(in *Instance, path ...string) (cty.Value, error) {
	body := in.Block.Body
	for _, typ := range path[:len(path)-1] {
		var found *hclsyntax.Block
		for _, b := range body.Blocks {
			if b.Type == typ {
				if found != nil {
					return cty.NilVal, fmt.Errorf("%s: more than one %s block", in.addr(), typ)
				}
				found = b
			}
		}
		if found == nil {
			return cty.NilVal, nil
		}
		body = found.Body
	}
	a, ok := body.Attributes[path[len(path)-1]]
	if !ok {
		return cty.NilVal, nil
	}
	v, diags := a.Expr.Value(e.ctx(in))
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s: %v", in.addr(), diags.Errs())
	}
	return v, nil
}

// HasBlock reports whether the instance's body has a block of the type.
func HasBlock(in *Instance, typ string) bool {
	for _, b := range in.Block.Body.Blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}

// ---- functions --------------------------------------------------------------

func functions(dir string) map[string]function.Function {
	return map[string]function.Function{
		"base64encode": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "s", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
			},
		}),
		"file": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				p := args[0].AsString()
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				b, err := readFile(p)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(string(b)), nil
			},
		}),
		"yamldecode": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "src", Type: cty.String}},
			Type:   function.StaticReturnType(cty.DynamicPseudoType),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				var v any
				if err := yaml.Unmarshal([]byte(args[0].AsString()), &v); err != nil {
					return cty.NilVal, err
				}
				return fromJSONable(v)
			},
		}),
		"tostring":   convertFunc(cty.String),
		"tonumber":   convertFunc(cty.Number),
		"tobool":     convertFunc(cty.Bool),
		"toset":      convertFunc(cty.Set(cty.DynamicPseudoType)),
		"tolist":     convertFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      convertFunc(cty.Map(cty.DynamicPseudoType)),
		"merge":      stdlib.MergeFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"replace":    stdlib.ReplaceFunc,
		"split":      stdlib.SplitFunc,
		"join":       stdlib.JoinFunc,
		"keys":       stdlib.KeysFunc,
		"values":     stdlib.ValuesFunc,
		"length":     lengthFunc,
		"floor":      stdlib.FloorFunc,
		"lookup":     stdlib.LookupFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"format":     stdlib.FormatFunc,
		"lower":      stdlib.LowerFunc,
		"upper":      stdlib.UpperFunc,
		"sort":       stdlib.SortFunc,
		"flatten":    stdlib.FlattenFunc,
		"distinct":   stdlib.DistinctFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"regex":      stdlib.RegexFunc,
		"can":        tryfunc.CanFunc,
	}
}

// lengthFunc is Terraform's length: stdlib's, which also counts an object's
// attributes (a map variable's default, {}, is an object here: variables
// are not converted to their declared type).
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if v := args[0]; v.Type().IsObjectType() && v.IsKnown() && !v.IsNull() {
			return cty.NumberIntVal(int64(len(v.Type().AttributeTypes()))), nil
		}
		return stdlib.LengthFunc.Call(args)
	},
})

func convertFunc(t cty.Type) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true}},
		Type: func(args []cty.Value) (cty.Type, error) {
			v, err := convert.Convert(args[0], t)
			if err != nil {
				return cty.NilType, err
			}
			return v.Type(), nil
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) { return convert.Convert(args[0], t) },
	})
}

// fromJSONable turns decoded YAML into a cty value the way Terraform's
// yamldecode does for plain documents (objects, tuples, strings, numbers).
func fromJSONable(v any) (cty.Value, error) {
	b, err := json.Marshal(normalize(v))
	if err != nil {
		return cty.NilVal, err
	}
	t, err := ctyjson.ImpliedType(b)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(b, t)
}

func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = normalize(x)
		}
		return v
	case map[any]any:
		out := map[string]any{}
		for k, x := range v {
			out[fmt.Sprint(k)] = normalize(x)
		}
		return out
	case []any:
		for i, x := range v {
			v[i] = normalize(x)
		}
		return v
	default:
		return v
	}
}
