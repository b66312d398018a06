package terraformcheck

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Check loads and evaluates the Terraform root module in dir and returns
// every way it disagrees with exp (nil when it agrees).
func Check(dir string, exp Expect) ([]string, error) { return CheckWith(dir, exp, nil) }

// CheckWith is Check with the root module's variables set to vars (the
// others take their defaults). exp.Frontend may be public only when vars
// set exp.PublicVar to true: never by default.
func CheckWith(dir string, exp Expect, vars map[string]cty.Value) ([]string, error) {
	m, err := LoadModule(dir)
	if err != nil {
		return nil, err
	}
	c := &checker{exp: exp, root: Evaluate(m, vars)}
	c.references(m)
	c.services()
	if exp.Migrator != "" {
		c.database()
	}
	c.topics()
	c.subscriptions()
	c.scheduler()
	if exp.Frontend != "" {
		c.exposure(vars)
	}
	if len(exp.Alerts) > 0 || len(exp.Dashboard) > 0 {
		c.monitoring()
	}
	return c.problems, nil
}

type checker struct {
	exp      Expect
	root     *Eval
	problems []string

	svcs      map[string]*service // by Cloud Run service name
	pushEmail string
}

type service struct {
	call   string
	eval   *Eval
	run    *Instance
	url    string
	topics []string // it may publish to
}

func (c *checker) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// instances lists the instances of every resource of the type in ev.
func instances(ev *Eval, typ string) []*Instance {
	var out []*Instance
	for _, r := range ev.Mod.Resources {
		if r.Type == typ {
			if ins, ok := ev.Instances[r.Addr()]; ok {
				out = append(out, ins...)
			}
		}
	}
	return out
}

// unevaluated names the resources of the type whose for_each or count could
// not be evaluated.
func (c *checker) unevaluated(ev *Eval, typ string) {
	for _, r := range ev.Mod.Resources {
		if _, ok := ev.Instances[r.Addr()]; r.Type == typ && !ok {
			c.fail("%s (%s): cannot evaluate its for_each/count", r.Addr(), r.Range)
		}
	}
}

// str is v as a known string.
func str(v cty.Value) (string, bool) {
	if v == cty.NilVal || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

func num(v cty.Value) (int, bool) {
	if v == cty.NilVal || v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
		return 0, false
	}
	var n int
	if err := gocty.FromCtyValue(v, &n); err != nil {
		return 0, false
	}
	return n, true
}

func attrOf(v cty.Value, name string) cty.Value {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute(name) {
		return cty.NilVal
	}
	return v.GetAttr(name)
}

func (c *checker) attr(ev *Eval, in *Instance, path ...string) cty.Value {
	v, err := ev.Attr(in, path...)
	if err != nil {
		c.fail("%s", err)
		return cty.NilVal
	}
	return v
}

// resolve finds the instance a reference string ("ref:type.name[key].attr")
// names, in ev.
func resolve(ev *Eval, ref string) (*Instance, string, bool) {
	s, ok := strings.CutPrefix(ref, "ref:")
	if !ok {
		return nil, "", false
	}
	cut := strings.LastIndex(s, "]")
	dot := strings.LastIndex(s, ".")
	if dot < cut || dot < 0 {
		return nil, "", false
	}
	addr, attr := s[:dot], s[dot+1:]
	for _, ins := range ev.Instances {
		for _, in := range ins {
			if in.addr() == addr {
				return in, attr, true
			}
		}
	}
	return nil, "", false
}

// topicName is the name of the topic a topic reference (an id from
// google_pubsub_topic, or a literal projects/…/topics/name) designates.
func (c *checker) topicName(v cty.Value) (string, bool) {
	s, ok := str(v)
	if !ok {
		return "", false
	}
	if in, _, ok := resolve(c.root, s); ok {
		if in.Block.Type != "google_pubsub_topic" {
			return "", false
		}
		return str(attrOf(in.Value, "name"))
	}
	if i := strings.LastIndex(s, "/topics/"); i >= 0 {
		return s[i+len("/topics/"):], true
	}
	return s, true
}

// ---- services ------------------------------------------------------------------

func (c *checker) services() {
	c.svcs = map[string]*service{}
	accounts := map[string]string{}
	for _, call := range c.root.Mod.Calls {
		ev, ok := c.root.Children[call.Name]
		if !ok {
			continue
		}
		c.unevaluated(ev, "google_cloud_run_v2_service")
		for _, run := range instances(ev, "google_cloud_run_v2_service") {
			name, ok := str(attrOf(run.Value, "name"))
			if !ok {
				c.fail("module.%s: %s has no known name", call.Name, run.addr())
				continue
			}
			if prev, dup := c.svcs[name]; dup {
				c.fail("service %s: Cloud Run service defined twice (module.%s and module.%s)", name, prev.call, call.Name)
				continue
			}
			s := &service{call: call.Name, eval: ev, run: run}
			s.url, _ = str(ev.Outputs["url"])
			for _, p := range instances(ev, "google_pubsub_topic_iam_member") {
				if role, _ := str(attrOf(p.Value, "role")); role == "roles/pubsub.publisher" {
					if t, ok := c.topicName(attrOf(p.Value, "topic")); ok {
						s.topics = append(s.topics, t)
					}
				}
			}
			c.svcs[name] = s
		}
	}
	for _, name := range c.exp.Services {
		s, ok := c.svcs[name]
		if !ok {
			c.fail("service %s: no Cloud Run service named %s", name, name)
			continue
		}
		c.service(name, s, accounts)
	}
	for name, s := range c.svcs {
		if !slices.Contains(c.exp.Services, name) {
			c.fail("service %s (module.%s): not in the registry's services", name, s.call)
		}
	}
}

func (c *checker) service(name string, s *service, accounts map[string]string) {
	where := fmt.Sprintf("service %s (module.%s)", name, s.call)
	sas := instances(s.eval, "google_service_account")
	if len(sas) != 1 {
		c.fail("%s: want its own google_service_account, found %d", where, len(sas))
	} else {
		sa := sas[0]
		got, _ := str(c.attr(s.eval, s.run, "template", "service_account"))
		if got != sa.Ref("email") && got != attrOf(sa.Value, "email").AsString() {
			c.fail("%s: runs as %q, not its own service account %s", where, got, sa.addr())
		}
		id, ok := str(attrOf(sa.Value, "account_id"))
		switch {
		case !ok:
			c.fail("%s: service account id unknown", where)
		case accounts[id] != "":
			c.fail("%s: shares service account %q with service %s", where, id, accounts[id])
		default:
			accounts[id] = name
		}
	}
	if n, ok := num(c.attr(s.eval, s.run, "template", "scaling", "min_instance_count")); !ok || n != 0 {
		c.fail("%s: want template.scaling.min_instance_count = 0", where)
	}
	if !strings.HasPrefix(s.url, "https://"+name+"-") {
		c.fail("%s: url output %q is not the service's deterministic URL", where, s.url)
	}
	timeout, _ := str(c.attr(s.eval, s.run, "template", "timeout"))
	td, err := time.ParseDuration(timeout)
	if err != nil {
		c.fail("%s: template.timeout %q: %v", where, timeout, err)
	}
	env := s.eval.Locals["env"]
	ht, _ := str(attrOf(env, "HANDLER_TIMEOUT"))
	hd, herr := time.ParseDuration(ht)
	switch {
	case herr != nil:
		c.fail("%s: HANDLER_TIMEOUT %q in local.env: %v", where, ht, herr)
	case err == nil && hd >= td:
		c.fail("%s: HANDLER_TIMEOUT %s must be below the Cloud Run timeout %s", where, hd, td)
	case hd > time.Duration(c.exp.Delivery.AckDeadlineSeconds)*time.Second:
		c.fail("%s: HANDLER_TIMEOUT %s exceeds the ack deadline %ds (the push would be redelivered while handled)",
			where, hd, c.exp.Delivery.AckDeadlineSeconds)
	}
	for _, t := range s.topics {
		if !slices.Contains(c.exp.EventTopics, t) {
			c.fail("%s: publishes to %q, not an event topic of the registry", where, t)
		}
	}
}

// ---- topics -------------------------------------------------------------------

func (c *checker) topics() {
	c.unevaluated(c.root, "google_pubsub_topic")
	have := map[string]int{}
	for _, in := range instances(c.root, "google_pubsub_topic") {
		name, ok := str(attrOf(in.Value, "name"))
		if !ok {
			c.fail("%s: name unknown", in.addr())
			continue
		}
		have[name]++
	}
	for _, t := range c.exp.Topics {
		switch have[t] {
		case 0:
			c.fail("topic %s: no google_pubsub_topic", t)
		case 1:
		default:
			c.fail("topic %s: defined %d times", t, have[t])
		}
	}
	for _, t := range slices.Sorted(maps.Keys(have)) {
		if !slices.Contains(c.exp.Topics, t) {
			c.fail("topic %s: not in the registry", t)
		}
	}
	for _, t := range c.exp.EventTopics {
		published := t == c.exp.KickTopic && len(c.exp.Kicks) > 0
		for _, s := range c.svcs {
			published = published || slices.Contains(s.topics, t)
		}
		if !published {
			c.fail("topic %s: no service may publish to it (roles/pubsub.publisher)", t)
		}
	}
}

// ---- subscriptions -------------------------------------------------------------

func (c *checker) subscriptions() {
	c.unevaluated(c.root, "google_pubsub_subscription")
	byName := map[string]*Instance{}
	for _, in := range instances(c.root, "google_pubsub_subscription") {
		name, ok := str(attrOf(in.Value, "name"))
		if !ok {
			c.fail("%s: name unknown", in.addr())
			continue
		}
		if _, dup := byName[name]; dup {
			c.fail("subscription %s: defined twice", name)
		}
		byName[name] = in
	}
	used := map[string]bool{}
	d := c.exp.Delivery
	for _, sub := range c.exp.Subscriptions {
		in, ok := byName[sub.ID]
		where := "subscription " + sub.ID
		if !ok {
			c.fail("%s: no google_pubsub_subscription", where)
			continue
		}
		used[sub.ID] = true
		if t, _ := c.topicName(c.attr(c.root, in, "topic")); t != sub.Topic {
			c.fail("%s: on topic %q, want %q", where, t, sub.Topic)
		}
		filter, _ := str(c.attr(c.root, in, "filter"))
		if filter != sub.Filter() {
			c.fail("%s: filter %q, want %q", where, filter, sub.Filter())
		}
		if n, _ := num(c.attr(c.root, in, "ack_deadline_seconds")); n != d.AckDeadlineSeconds {
			c.fail("%s: ack_deadline_seconds %d, want %d", where, n, d.AckDeadlineSeconds)
		}
		if !HasBlock(in, "dead_letter_policy") {
			c.fail("%s: no dead_letter_policy", where)
		} else {
			if t, _ := c.topicName(c.attr(c.root, in, "dead_letter_policy", "dead_letter_topic")); t != sub.DeadLetterTopic {
				c.fail("%s: dead-letter topic %q, want %q", where, t, sub.DeadLetterTopic)
			}
			if n, _ := num(c.attr(c.root, in, "dead_letter_policy", "max_delivery_attempts")); n != d.MaxDeliveryAttempts {
				c.fail("%s: max_delivery_attempts %d, want %d", where, n, d.MaxDeliveryAttempts)
			}
		}
		minB, _ := str(c.attr(c.root, in, "retry_policy", "minimum_backoff"))
		maxB, _ := str(c.attr(c.root, in, "retry_policy", "maximum_backoff"))
		if want := fmt.Sprintf("%ds", d.MinBackoffSeconds); minB != want {
			c.fail("%s: retry_policy.minimum_backoff %q, want %q", where, minB, want)
		}
		if want := fmt.Sprintf("%ds", d.MaxBackoffSeconds); maxB != want {
			c.fail("%s: retry_policy.maximum_backoff %q, want %q", where, maxB, want)
		}
		c.push(where, in, sub.Service)
	}
	// A pull subscription on every dead-letter topic, to inspect it.
	for _, sub := range c.exp.Subscriptions {
		found := false
		for name, in := range byName {
			if used[name] || HasBlock(in, "push_config") {
				continue
			}
			if t, _ := c.topicName(c.attr(c.root, in, "topic")); t == sub.DeadLetterTopic {
				found, used[name] = true, true
			}
		}
		if !found {
			c.fail("dead-letter topic %s: no pull subscription to inspect it", sub.DeadLetterTopic)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		if !used[name] {
			c.fail("subscription %s: not in the registry (nor a dead-letter pull subscription)", name)
		}
	}
}

// push checks that a subscription pushes to service's /events with an OIDC
// token for the service's URL, from the one push identity that may invoke it.
func (c *checker) push(where string, in *Instance, svc string) {
	if !HasBlock(in, "push_config") {
		c.fail("%s: no push_config", where)
		return
	}
	s, ok := c.svcs[svc]
	if !ok {
		c.fail("%s: handled by service %s, which has no Cloud Run service", where, svc)
		return
	}
	endpoint, _ := str(c.attr(c.root, in, "push_config", "push_endpoint"))
	if s.url == "" || endpoint != s.url+"/events" {
		c.fail("%s: pushes to %q, want %s's %q", where, endpoint, svc, s.url+"/events")
	}
	if !HasBlockPath(in, "push_config", "oidc_token") {
		c.fail("%s: push without an OIDC token", where)
		return
	}
	aud, _ := str(c.attr(c.root, in, "push_config", "oidc_token", "audience"))
	if aud != s.url {
		c.fail("%s: OIDC audience %q, want %s's URL %q", where, aud, svc, s.url)
	}
	email, ok := str(c.attr(c.root, in, "push_config", "oidc_token", "service_account_email"))
	if !ok || !strings.Contains(email, "@") {
		c.fail("%s: OIDC service account %q unknown", where, email)
		return
	}
	if c.pushEmail == "" {
		c.pushEmail = email
		c.pushIdentity(email)
	} else if email != c.pushEmail {
		c.fail("%s: pushes as %s, other subscriptions as %s", where, email, c.pushEmail)
	}
	member := "serviceAccount:" + email
	invoker := false
	for _, m := range instances(s.eval, "google_cloud_run_v2_service_iam_member") {
		role, _ := str(attrOf(m.Value, "role"))
		got, _ := str(attrOf(m.Value, "member"))
		invoker = invoker || (role == "roles/run.invoker" && got == member)
	}
	if !invoker {
		c.fail("%s: %s may not invoke service %s (roles/run.invoker)", where, email, svc)
	}
}

// pushIdentity checks the push identity is a service account of the root
// module (its own, not a runtime account).
func (c *checker) pushIdentity(email string) {
	id, _, _ := strings.Cut(email, "@")
	for _, sa := range instances(c.root, "google_service_account") {
		if got, _ := str(attrOf(sa.Value, "account_id")); got == id {
			return
		}
	}
	c.fail("push identity %s: not a google_service_account of the root module", email)
}

// HasBlockPath reports whether the nested blocks exist.
func HasBlockPath(in *Instance, path ...string) bool {
	body := in.Block.Body
	for _, typ := range path {
		found := false
		for _, b := range body.Blocks {
			if b.Type == typ {
				body, found = b.Body, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ---- scheduler ------------------------------------------------------------------

func (c *checker) scheduler() {
	c.unevaluated(c.root, "google_cloud_scheduler_job")
	seen := map[string]bool{}
	for _, in := range instances(c.root, "google_cloud_scheduler_job") {
		where := "scheduler job " + in.addr()
		attrs := c.attr(c.root, in, "pubsub_target", "attributes")
		var got map[string]string
		if attrs == cty.NilVal || !attrs.IsWhollyKnown() || attrs.IsNull() {
			c.fail("%s: pubsub_target.attributes unknown", where)
			continue
		}
		if m, err := convert.Convert(attrs, cty.Map(cty.String)); err != nil || gocty.FromCtyValue(m, &got) != nil {
			c.fail("%s: pubsub_target.attributes unknown", where)
			continue
		}
		p := got["pipeline"]
		kick, ok := c.exp.Kicks[p]
		if !ok {
			c.fail("%s: kicks pipeline %q, which the cron table does not schedule", where, p)
			continue
		}
		if seen[p] {
			c.fail("%s: second job for pipeline %s", where, p)
		}
		seen[p] = true
		where = fmt.Sprintf("scheduler job for %s", p)
		if !maps.Equal(got, kick.Attributes) {
			c.fail("%s: attributes %v, want the kick's %v", where, got, kick.Attributes)
		}
		data, _ := str(c.attr(c.root, in, "pubsub_target", "data"))
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || string(raw) != kick.Data {
			c.fail("%s: data %q (base64 of %q), want base64 of the kick's %q", where, data, raw, kick.Data)
		}
		if t, _ := c.topicName(c.attr(c.root, in, "pubsub_target", "topic_name")); t != c.exp.KickTopic {
			c.fail("%s: publishes to %q, want %q", where, t, c.exp.KickTopic)
		}
		if s, _ := str(c.attr(c.root, in, "schedule")); s != c.exp.Schedules[p] {
			c.fail("%s: schedule %q, want the cron table's %q", where, s, c.exp.Schedules[p])
		}
		if tz, _ := str(c.attr(c.root, in, "time_zone")); tz != c.exp.TimeZone {
			c.fail("%s: time_zone %q, want the cron table's %q", where, tz, c.exp.TimeZone)
		}
		c.jobID(where, in, p)
	}
	for _, p := range sortedKeys(c.exp.Kicks) {
		if !seen[p] {
			c.fail("pipeline %s: no Cloud Scheduler job", p)
		}
	}
}

// jobID checks the id of pipeline's job is the one form the code defines.
func (c *checker) jobID(where string, in *Instance, pipeline string) {
	if c.exp.JobID == nil {
		return
	}
	prefix, _ := str(c.root.Vars["name_prefix"])
	want := c.exp.JobID(prefix, pipeline)
	if id, _ := str(c.attr(c.root, in, "name")); id != want {
		c.fail("%s: name %q, want %q (name_prefix %q)", where, id, want, prefix)
	}
}
