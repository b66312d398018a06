package terraformcheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// ---- exposure ---------------------------------------------------------------------

const (
	ingressAll        = "INGRESS_TRAFFIC_ALL"
	ingressInternalLB = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
)

// iapAgent is the IAP service agent as an IAM member.
var iapAgent = regexp.MustCompile(`^serviceAccount:service-[^@]+@gcp-sa-iap\.iam\.gserviceaccount\.com$`)

// exposure checks no service faces the internet unless the frontend was
// made public on purpose (PublicVar set to true by the caller, never by
// default), and a private frontend sits behind the IAP load balancer.
func (c *checker) exposure(vars map[string]cty.Value) {
	if b, ok := c.root.Mod.Variables[c.exp.PublicVar]; !ok {
		c.fail("variable %s: not declared", c.exp.PublicVar)
	} else if d, ok := b.Body.Attributes["default"]; ok {
		if v, diags := d.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.Bool && v.True() {
			c.fail("variable %s defaults to true: %s must be private by default", c.exp.PublicVar, c.exp.Frontend)
		}
	}
	v, set := vars[c.exp.PublicVar]
	public := set && v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.Type() == cty.Bool && v.True()
	for _, name := range c.exp.Services {
		s, ok := c.svcs[name]
		if !ok {
			continue
		}
		open := c.openings(s)
		switch {
		case len(open) == 0:
		case name == c.exp.Frontend && public:
			continue
		case name == c.exp.Frontend:
			c.fail("service %s (module.%s): public by default (%s); only %s = true may expose it",
				name, s.call, strings.Join(open, ", "), c.exp.PublicVar)
		default:
			c.fail("service %s (module.%s): public (%s); only %s may face the internet", name, s.call,
				strings.Join(open, ", "), c.exp.Frontend)
		}
	}
	if s, ok := c.svcs[c.exp.Frontend]; ok && !public {
		c.loadBalancer(c.exp.Frontend, s)
	}
}

// invokers lists the members with roles/run.invoker on the service.
func invokers(s *service) []string {
	var out []string
	for _, m := range instances(s.eval, "google_cloud_run_v2_service_iam_member") {
		role, _ := str(attrOf(m.Value, "role"))
		member, _ := str(attrOf(m.Value, "member"))
		if role == "roles/run.invoker" {
			out = append(out, member)
		}
	}
	return out
}

// openings says how the service is open to the internet: ingress from
// everywhere (Cloud Run's default when unset), anyone as an invoker.
func (c *checker) openings(s *service) []string {
	var open []string
	ingress, _ := str(c.attr(s.eval, s.run, "ingress"))
	if ingress == "" || ingress == ingressAll {
		open = append(open, fmt.Sprintf("ingress %q", ingress))
	}
	for _, m := range invokers(s) {
		if m == "allUsers" || m == "allAuthenticatedUsers" {
			open = append(open, m+" may invoke it")
		}
	}
	return open
}

// loadBalancer checks the chain from the internet to a private frontend:
// ingress from load balancers only; a serverless NEG of the service; a
// backend service on it with IAP, the default of a URL map; an HTTPS proxy
// with a Google-managed certificate for that map; a forwarding rule on 443
// to the proxy; and the IAP service agent allowed to invoke the service.
func (c *checker) loadBalancer(name string, s *service) {
	where := fmt.Sprintf("service %s (module.%s)", name, s.call)
	if ingress, _ := str(c.attr(s.eval, s.run, "ingress")); ingress != ingressInternalLB {
		c.fail("%s: ingress %q, want %s (behind its load balancer)", where, ingress, ingressInternalLB)
	}
	if !slices.ContainsFunc(invokers(s), iapAgent.MatchString) {
		c.fail("%s: the IAP service agent may not invoke it (roles/run.invoker): IAP cannot reach it", where)
	}
	negs := c.refsTo("google_compute_region_network_endpoint_group", func(in *Instance) bool {
		typ, _ := str(attrOf(in.Value, "network_endpoint_type"))
		svc, _ := str(c.attr(c.root, in, "cloud_run", "service"))
		return typ == "SERVERLESS" && svc == name
	})
	if len(negs) == 0 {
		c.fail("%s: private, but no serverless network endpoint group of it for a load balancer", where)
		return
	}
	backends := c.refsTo("google_compute_backend_service", func(in *Instance) bool {
		enabled := c.attr(c.root, in, "iap", "enabled")
		return enabled != cty.NilVal && enabled.IsKnown() && enabled.Type() == cty.Bool && enabled.True() &&
			slices.ContainsFunc(c.blockAttrs(in, "backend", "group"), func(g string) bool { return negs.has(g) })
	})
	if len(backends) == 0 {
		c.fail("%s: no backend service with IAP enabled on its network endpoint group", where)
		return
	}
	maps := c.refsTo("google_compute_url_map", func(in *Instance) bool {
		def, _ := str(c.attr(c.root, in, "default_service"))
		matchers := c.blockAttrs(in, "path_matcher", "default_service")
		return backends.has(def) && !slices.ContainsFunc(matchers, func(m string) bool { return !backends.has(m) })
	})
	if len(maps) == 0 {
		c.fail("%s: no URL map whose default service (and path matchers') is its IAP backend service", where)
		return
	}
	proxies := c.refsTo("google_compute_target_https_proxy", func(in *Instance) bool {
		m, _ := str(c.attr(c.root, in, "url_map"))
		return maps.has(m) && c.managedCertificate(in)
	})
	if len(proxies) == 0 {
		c.fail("%s: no HTTPS proxy with a Google-managed certificate on its URL map", where)
		return
	}
	rules := c.refsTo("google_compute_global_forwarding_rule", func(in *Instance) bool {
		target, _ := str(attrOf(in.Value, "target"))
		port, _ := str(attrOf(in.Value, "port_range"))
		return proxies.has(target) && (port == "443" || port == "443-443")
	})
	if len(rules) == 0 {
		c.fail("%s: no global forwarding rule on port 443 to its HTTPS proxy", where)
	}
}

// refs are the reference strings of resource instances (their id and
// self_link).
type refs map[string]bool

func (r refs) has(ref string) bool { return r[ref] }

// refsTo collects the references of the root module's instances of typ
// that ok accepts.
func (c *checker) refsTo(typ string, ok func(*Instance) bool) refs {
	out := refs{}
	for _, in := range instances(c.root, typ) {
		if ok(in) {
			out[in.Ref("id")], out[in.Ref("self_link")] = true, true
		}
	}
	return out
}

// blockAttrs evaluates the attribute in every block of the type (static
// blocks only) of the instance's body that sets it; a value that cannot be
// evaluated to a string is "".
func (c *checker) blockAttrs(in *Instance, block, attr string) []string {
	var out []string
	for _, b := range in.Block.Body.Blocks {
		if b.Type != block {
			continue
		}
		a, ok := b.Body.Attributes[attr]
		if !ok {
			continue
		}
		v, diags := a.Expr.Value(c.root.ctx(in))
		s, _ := str(v)
		if diags.HasErrors() {
			s = ""
		}
		out = append(out, s)
	}
	return out
}

// managedCertificate reports whether the proxy serves a Google-managed
// certificate for at least one domain.
func (c *checker) managedCertificate(proxy *Instance) bool {
	certs := c.attr(c.root, proxy, "ssl_certificates")
	if certs == cty.NilVal || !certs.IsKnown() || certs.IsNull() || !certs.CanIterateElements() {
		return false
	}
	for it := certs.ElementIterator(); it.Next(); {
		_, v := it.Element()
		ref, _ := str(v)
		cert, _, ok := resolve(c.root, ref)
		if !ok || cert.Block.Type != "google_compute_managed_ssl_certificate" {
			continue
		}
		domains := c.attr(c.root, cert, "managed", "domains")
		if domains != cty.NilVal && domains.IsKnown() && !domains.IsNull() && domains.CanIterateElements() && domains.LengthInt() > 0 {
			return true
		}
	}
	return false
}
