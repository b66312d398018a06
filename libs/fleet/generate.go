package fleet

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
)

// The generator simulates a fleet day by day in closed form: every vehicle
// accumulates kilometres and engine hours linearly from its commissioning date
// (at a type-typical rate times a per-vehicle usage factor), every maintenance
// plan produces its occurrences from those meters and the calendar, and
// breakdowns arrive by a hazard model that depends on age and on neglected
// maintenance.
//
// The daily preventive pipeline is assumed to have run every day at 06:00 up
// to yesterday: an occurrence whose trigger date (due date minus lead days for
// a calendar due, the day the meter passes the threshold for a meter due) is
// before today has its work order. Today's run has not happened yet, so plans
// whose trigger date is today are due. In addition, about 7% of active plans
// have a backlog: their latest occurrence was never generated (the old
// scheduler missed it), so they are overdue today. A plan is "due on Now" when
//
//	active AND ((next_due_date IS NOT NULL AND next_due_date - lead_days <= today)
//	         OR (next_due_meter IS NOT NULL AND next_due_meter <= the asset's meter
//	             (meter_reading for km, engine_hours for hours)))
//
// which holds for roughly 5–15% of active plans.

// Hazard model for corrective work orders. For each asset and each calendar
// month m in its history, the number of breakdowns is Poisson distributed
// with mean
//
//	λ(m) = base(type) · exp(ageCoef · age_years(m)) · (1 + skipCoef · skipped12(m) + lateCoef · late12(m)) · √usage
//
// where skipped12 / late12 count the asset's preventive occurrences due in the
// 365 days before the middle of the month that were skipped (work order
// CANCELLED, never performed) or completed late, and usage is the asset's
// usage factor (0.6–1.4 of its type's typical distance or hours per year).
// A 12-year-old vehicle fails about 4× as often as a new one, and each skipped
// service in the last year adds 60% to the rate.
const (
	ageCoef  = 0.12
	skipCoef = 0.6
	lateCoef = 0.15
	// backlogShare is the probability that an active plan's latest occurrence was
	// never generated, so the plan is overdue today.
	backlogShare = 0.07
)

// Independent random streams, so that e.g. asking for more inventory items
// does not change the assets.
const (
	streamTechnicians = 1
	streamInventory   = 2
	streamAssets      = 1 << 32
)

const day = 24 * time.Hour

type simAsset struct {
	idx          int
	tag          string
	kind         *vehicleKind
	status       string
	commissioned time.Time
	end          time.Time // retirement or lay-up date; zero while in service
	usage        float64
	kmPerDay     float64
	hoursPerDay  float64
	pSkip, pLate float64
	skips, lates []time.Time // due dates of neglected and of late preventive occurrences
}

func (a *simAsset) rate(unit string) float64 {
	if unit == "hours" {
		return a.hoursPerDay
	}
	return a.kmPerDay
}

// meterAt is the odometer (unit "km") or hour meter ("hours") at the start of
// day d.
func (a *simAsset) meterAt(d time.Time, unit string) float64 {
	if !a.end.IsZero() && d.After(a.end) {
		d = a.end
	}
	days := math.Max(0, float64(d.Sub(a.commissioned)/day))
	return round1(a.rate(unit) * days)
}

// dateAtMeter is the first day on which the meter reads at least m.
func (a *simAsset) dateAtMeter(m float64, unit string) (time.Time, bool) {
	r := a.rate(unit)
	if r <= 0 {
		return time.Time{}, false
	}
	days := math.Ceil(m/r - 1e-9)
	return a.commissioned.AddDate(0, 0, int(days)), true
}

type simWO struct {
	row   workOrderRow
	asset int
	seq   int
}

type generator struct {
	o                     SeedOptions
	now, today, histStart time.Time
	activeTechs, allTechs []string
	ds                    dataset
	wos                   []simWO
	woSeq                 int
	planSeq               int
}

// generate builds the whole synthetic dataset in memory; o must be normalized.
func generate(o SeedOptions) *dataset {
	g := &generator{o: o, now: o.Now}
	g.today = time.Date(o.Now.Year(), o.Now.Month(), o.Now.Day(), 0, 0, 0, 0, time.UTC)
	g.histStart = g.today.AddDate(-o.Years, 0, 0)
	g.technicians()
	for i := range o.Assets {
		g.asset(i)
	}
	slices.SortFunc(g.wos, func(x, y simWO) int {
		return cmp.Or(x.row.CreatedAt.Compare(*y.row.CreatedAt), cmp.Compare(x.asset, y.asset), cmp.Compare(x.seq, y.seq))
	})
	g.ds.workOrders = make([]workOrderRow, len(g.wos))
	for i := range g.wos {
		g.wos[i].row.Number = fmt.Sprintf("WO-%06d", i+1)
		g.ds.workOrders[i] = g.wos[i].row
	}
	g.inventory()
	return &g.ds
}

var asciiFold = strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "í", "i", "é", "e", "ß", "ss")

func (g *generator) technicians() {
	rng := rand.New(rand.NewPCG(g.o.Seed, streamTechnicians))
	first := slices.Clone(firstNames)
	last := slices.Clone(lastNames)
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	rng.Shuffle(len(last), func(i, j int) { last[i], last[j] = last[j], last[i] })
	seen := map[string]int{}
	n := g.o.Technicians
	for i := range n {
		f, l := first[i%len(first)], last[(i+i/len(first))%len(last)]
		local := strings.ToLower(asciiFold.Replace(f) + "." + asciiFold.Replace(l))
		seen[local]++
		if seen[local] > 1 {
			local = fmt.Sprintf("%s%d", local, seen[local])
		}
		code := fmt.Sprintf("T-%03d", i+1)
		// One technician has left the company: inactive, seen only on old work orders.
		active := !(n >= 6 && i == n-1)
		created := g.histStart.AddDate(0, 0, -rng.IntN(5*365)).Add(9 * time.Hour)
		g.ds.technicians = append(g.ds.technicians, technicianRow{
			Code:      code,
			Name:      f + " " + l,
			Email:     local + "@fleet.example",
			Phone:     fmt.Sprintf("+49 30 5550 %04d", rng.IntN(10000)),
			Skill:     skills[rng.IntN(len(skills))],
			Active:    active,
			CreatedAt: &created,
		})
		g.allTechs = append(g.allTechs, code)
		if active {
			g.activeTechs = append(g.activeTechs, code)
		}
	}
}

// tech picks a technician for work at time at: anyone for work over a year
// ago, an active technician otherwise. "" when there are none.
func (g *generator) tech(rng *rand.Rand, at time.Time) string {
	pool := g.activeTechs
	if at.Before(g.now.AddDate(-1, 0, 0)) {
		pool = g.allTechs
	}
	if len(pool) == 0 {
		return ""
	}
	return pool[rng.IntN(len(pool))]
}

func (g *generator) addWO(a *simAsset, w workOrderRow) {
	w.AssetTag = a.tag
	g.wos = append(g.wos, simWO{row: w, asset: a.idx, seq: g.woSeq})
	g.woSeq++
}

func pickKind(rng *rand.Rand) *vehicleKind {
	total := 0
	for i := range kinds {
		total += kinds[i].weight
	}
	r := rng.IntN(total)
	for i := range kinds {
		if r < kinds[i].weight {
			return &kinds[i]
		}
		r -= kinds[i].weight
	}
	return &kinds[0]
}

func (g *generator) asset(i int) {
	rng := rand.New(rand.NewPCG(g.o.Seed, streamAssets+uint64(i)))
	a, ageYears := g.newAsset(rng, i)
	g.assetStatus(rng, a, ageYears)
	a.pSkip, a.pLate = discipline(rng)
	g.assetRow(rng, a)
	for _, t := range planTemplates(rng, a.kind) {
		g.plan(rng, a, t)
	}
	g.failures(rng, a)
	if a.status == "IN_MAINTENANCE" {
		g.currentRepair(rng, a)
	}
}

// newAsset draws vehicle i's kind, age and usage; it returns the vehicle,
// in service, and its age in years.
func (g *generator) newAsset(rng *rand.Rand, i int) (*simAsset, float64) {
	k := pickKind(rng)
	ageYears := 0.5 + 11.5*rng.Float64()
	a := &simAsset{
		idx:          i,
		tag:          fmt.Sprintf("VH-%04d", i+1),
		kind:         k,
		status:       "ACTIVE",
		commissioned: g.today.AddDate(0, 0, -int(ageYears*365.25)),
		usage:        0.6 + 0.8*rng.Float64(),
	}
	a.kmPerDay = k.kmPerYear * a.usage / 365.25
	if k.kmPerHour > 0 {
		a.hoursPerDay = a.kmPerDay / k.kmPerHour
	} else {
		a.hoursPerDay = k.hoursPerYear * a.usage / 365.25
	}
	return a, ageYears
}

// assetStatus draws the vehicle's status: old vehicles get retired; a few
// are laid up or in the workshop.
func (g *generator) assetStatus(rng *rand.Rand, a *simAsset, ageYears float64) {
	pRetire := 0.01
	if ageYears > 8 {
		pRetire = 0.15
	}
	switch r := rng.Float64(); {
	case r < pRetire:
		lo := later(g.histStart.AddDate(0, 0, 30), a.commissioned.AddDate(0, 0, 180))
		if hi := g.today.AddDate(0, 0, -30); lo.Before(hi) {
			a.status = "RETIRED"
			a.end = lo.AddDate(0, 0, rng.IntN(daysBetween(lo, hi)+1))
		}
	case r < pRetire+0.04:
		lo := later(g.today.AddDate(0, 0, -180), a.commissioned.AddDate(0, 0, 90))
		if hi := g.today.AddDate(0, 0, -14); lo.Before(hi) {
			a.status = "INACTIVE"
			a.end = lo.AddDate(0, 0, rng.IntN(daysBetween(lo, hi)+1))
		}
	case r < pRetire+0.09:
		a.status = "IN_MAINTENANCE"
	}
}

// discipline draws how well a vehicle is maintained, which differs between
// depots and drivers: the probabilities that a preventive occurrence is
// skipped and that it is done late.
func discipline(rng *rand.Rand) (pSkip, pLate float64) {
	switch r := rng.Float64(); {
	case r < 0.70:
		return 0.02, 0.08
	case r < 0.88:
		return 0.08, 0.20
	default:
		return 0.30, 0.35
	}
}

// assetRow adds the vehicle's assets row: make and model, model year, the
// meters now (or when it was laid up) and its depot.
func (g *generator) assetRow(rng *rand.Rand, a *simAsset) {
	k := a.kind
	mm := strings.SplitN(k.models[rng.IntN(len(k.models))], "|", 2)
	year := int32(a.commissioned.Year())
	if rng.Float64() < 0.25 {
		year--
	}
	meterDay := g.today
	if !a.end.IsZero() {
		meterDay = a.end
	}
	created := a.commissioned.Add(8 * time.Hour)
	g.ds.assets = append(g.ds.assets, assetRow{
		Tag:          a.tag,
		Name:         fmt.Sprintf("%s %d (%s %s)", k.label, a.idx+1, mm[0], mm[1]),
		Type:         k.typ,
		Make:         mm[0],
		Model:        mm[1],
		Year:         &year,
		Status:       a.status,
		Commissioned: a.commissioned,
		Meter:        a.meterAt(meterDay, "km"),
		Hours:        a.meterAt(meterDay, "hours"),
		Location:     depots[rng.IntN(len(depots))],
		CreatedAt:    &created,
		UpdatedAt:    &g.now,
	})
}

// planTemplates picks the vehicle's 1–3 maintenance plans: the kind's first
// plan, and others of the kind at random.
func planTemplates(rng *rand.Rand, k *vehicleKind) []planTemplate {
	n := 1
	switch r := rng.Float64(); {
	case r < 0.20:
	case r < 0.65:
		n = 2
	default:
		n = 3
	}
	templates := []planTemplate{k.plans[0]}
	for _, j := range rng.Perm(len(k.plans) - 1) {
		if len(templates) == n {
			break
		}
		templates = append(templates, k.plans[j+1])
	}
	return templates
}

// horizon is the moment the asset's history ends: now, or its lay-up date.
func (g *generator) horizon(a *simAsset) time.Time {
	if a.end.IsZero() {
		return g.now
	}
	return a.end
}

type planState struct {
	nextDate          time.Time
	nextMeter         float64
	lastDone          time.Time
	lastDoneMeter     float64
	woCount, skipsLen int
	latesLen          int
}

// simPlan is a maintenance plan being generated: its template, its asset,
// what its work orders share and where its schedule stands.
type simPlan struct {
	t          planTemplate
	a          *simAsset
	code, tech string
	st         planState
}

// plan adds a maintenance plan of asset a made from template t, with its
// history of preventive work orders.
func (g *generator) plan(rng *rand.Rand, a *simAsset, t planTemplate) {
	g.planSeq++
	p := &simPlan{t: t, a: a, code: fmt.Sprintf("PM-%05d", g.planSeq)}
	active := a.status == "ACTIVE" || a.status == "IN_MAINTENANCE"
	p.st = g.planStart(rng, a, t)
	p.tech = g.tech(rng, g.now)
	snaps := g.planHistory(rng, p)
	// Backlog: the latest occurrence was never generated.
	if active && len(snaps) > 0 && rng.Float64() < backlogShare {
		last := snaps[len(snaps)-1]
		g.wos, a.skips, a.lates = g.wos[:last.woCount], a.skips[:last.skipsLen], a.lates[:last.latesLen]
		p.st = last
	}
	g.ds.plans = append(g.ds.plans, g.planRow(p, active))
}

// planStart is where plan t of asset a stood when the history starts: at
// commissioning, or at a random phase of its cycle.
func (g *generator) planStart(rng *rand.Rand, a *simAsset, t planTemplate) planState {
	calendar, meter := t.intervalValue > 0, t.meterInterval > 0
	st := planState{}
	baseDate, baseMeter := a.commissioned, 0.0
	if a.commissioned.Before(g.histStart) {
		baseDate = later(g.histStart.AddDate(0, 0, -rng.IntN(g.cycleDays(a, t))), a.commissioned)
		baseMeter = a.meterAt(baseDate, t.meterUnit)
		if meter && t.mode == "fixed" && !calendar {
			// Thresholds at multiples of the interval; the first one not yet
			// passed when the history starts comes next.
			baseMeter = math.Floor(a.meterAt(g.histStart, t.meterUnit)/t.meterInterval) * t.meterInterval
		}
	}
	if calendar {
		st.nextDate = addInterval(baseDate, t.intervalValue, t.intervalUnit)
	}
	if meter {
		st.nextMeter = round1(baseMeter + t.meterInterval)
	}
	return st
}

// cycleDays is how many days one cycle of plan t takes on asset a when the
// history starts: the calendar interval or the days it takes to run the
// meter interval, whichever is shorter; at least 1.
func (g *generator) cycleDays(a *simAsset, t planTemplate) int {
	span := math.MaxInt
	if t.intervalValue > 0 {
		span = daysBetween(g.histStart, addInterval(g.histStart, t.intervalValue, t.intervalUnit))
	}
	if t.meterInterval > 0 {
		if r := a.rate(t.meterUnit); r > 0 {
			span = min(span, int(t.meterInterval/r))
		}
	}
	if span == math.MaxInt || span < 1 {
		span = 1
	}
	return span
}

// planHistory adds the plan's preventive work orders, one per occurrence
// whose trigger day is before today (or the asset's lay-up), as the daily
// pipeline would have, and advances the plan past each. It returns the
// plan's state before each occurrence.
func (g *generator) planHistory(rng *rand.Rand, p *simPlan) []planState {
	a := p.a
	limit := g.today
	if !a.end.IsZero() {
		limit = a.end
	}
	var snaps []planState
	var lastDue time.Time
	for range 10_000 {
		due, trigger, ok := a.nextOccurrence(p.t, p.st.nextDate, p.st.nextMeter)
		if !ok || !trigger.Before(limit) {
			break
		}
		if !due.After(lastDue) { // never two occurrences on one day
			due = lastDue.AddDate(0, 0, 1)
		}
		lastDue = due
		snap := p.st
		snap.woCount, snap.skipsLen, snap.latesLen = len(g.wos), len(a.skips), len(a.lates)
		snaps = append(snaps, snap)
		base := g.occurrence(rng, p, due, trigger)
		p.advance(due, base)
	}
	return snaps
}

// occurrence adds the work order of the plan's occurrence due on due and
// generated on trigger, with what became of it: skipped, or done (on time or
// late) as far as the asset's horizon lets. It returns the day a floating
// plan's next occurrence counts from: the completion day, else due.
func (g *generator) occurrence(rng *rand.Rand, p *simPlan, due, trigger time.Time) time.Time {
	a, t := p.a, p.t
	created := trigger.Add(6*time.Hour + time.Duration(rng.IntN(20))*time.Minute)
	if created.Before(a.commissioned) {
		created = a.commissioned.Add(6 * time.Hour)
	}
	w := workOrderRow{
		PlanCode: p.code, DueDate: ptr(due), Type: "PREVENTIVE", Priority: t.priority,
		Title: t.name, Description: t.description, CreatedAt: &created, TechCode: p.tech,
	}
	if rng.Float64() < 0.15 {
		w.TechCode = g.tech(rng, created)
	}
	base := due
	switch r := rng.Float64(); {
	case r < a.pSkip:
		// Never performed. Recent ones are still open; older ones were cancelled.
		if a.end.IsZero() && due.After(g.today.AddDate(0, 0, -30)) {
			w.Status = "OPEN"
		} else {
			w.Status = "CANCELLED"
			w.Description += " Not performed: vehicle not presented for service."
			a.skips = append(a.skips, due)
		}
	default:
		base = g.perform(rng, p, &w, r < a.pSkip+a.pLate, trigger)
	}
	if w.Status == "OPEN" && rng.Float64() < 0.2 {
		w.TechCode = ""
	}
	g.addWO(a, w)
	return base
}

// perform sets the status of preventive work order w, generated on trigger,
// whose work is done late or on time (between trigger and its due date):
// completed, or, when the work falls after the asset's horizon, open, in
// progress or cancelled. A completion is recorded in the plan's state. It
// returns the completion day, or w's due date when the work was not done.
func (g *generator) perform(rng *rand.Rand, p *simPlan, w *workOrderRow, late bool, trigger time.Time) time.Time {
	a, due, created := p.a, *w.DueDate, *w.CreatedAt
	var d time.Time
	if late {
		d = due.AddDate(0, 0, 3+rng.IntN(58))
	} else {
		d = trigger.AddDate(0, 0, rng.IntN(daysBetween(trigger, due)+1))
	}
	start := d.Add(7*time.Hour + time.Duration(rng.IntN(8*60))*time.Minute)
	if !start.After(created) {
		start = created.Add(30 * time.Minute)
	}
	hours := quarter(math.Max(0.25, p.t.hours*(0.7+0.8*rng.Float64())))
	done := start.Add(time.Duration(hours * float64(time.Hour)))
	hz, ended := g.horizon(a), !a.end.IsZero()
	switch {
	case start.After(hz) && ended, done.After(hz) && ended:
		w.Status = "CANCELLED"
		w.Description += " Cancelled: vehicle taken out of service."
	case start.After(hz):
		w.Status = "OPEN"
	case done.After(hz):
		w.Status, w.StartedAt = "IN_PROGRESS", ptr(start)
	default:
		w.Status, w.StartedAt, w.CompletedAt, w.RepairHours = "COMPLETED", ptr(start), ptr(done), ptr(hours)
		doneDay := schedule.DateOf(done.UTC()).Time()
		p.st.lastDone, p.st.lastDoneMeter = doneDay, a.meterAt(doneDay, unitOr(p.t.meterUnit))
		if late {
			a.lates = append(a.lates, due)
		}
		return doneDay
	}
	return due
}

// advance moves the plan's schedule past the occurrence due on due: a fixed
// plan along its schedule, a floating one from base, the day its work was
// done.
func (p *simPlan) advance(due, base time.Time) {
	t, a, st := p.t, p.a, &p.st
	calendar, meter := t.intervalValue > 0, t.meterInterval > 0
	switch {
	case t.mode == "fixed" && !meter:
		st.nextDate = addInterval(due, t.intervalValue, t.intervalUnit)
	case t.mode == "fixed" && !calendar:
		st.nextMeter = round1(st.nextMeter + t.meterInterval)
	case t.mode == "fixed":
		st.nextDate = addInterval(due, t.intervalValue, t.intervalUnit)
		st.nextMeter = round1(a.meterAt(due, t.meterUnit) + t.meterInterval)
	default: // floating: the next occurrence counts from the completion
		if calendar {
			st.nextDate = addInterval(base, t.intervalValue, t.intervalUnit)
		}
		if meter {
			st.nextMeter = round1(a.meterAt(base, t.meterUnit) + t.meterInterval)
		}
	}
}

// planRow is the plan's maintenance_plans row.
func (g *generator) planRow(p *simPlan, active bool) planRow {
	t, a, st := p.t, p.a, p.st
	r := planRow{
		Code: p.code, AssetTag: a.tag, Name: t.name, Description: t.description,
		LeadDays: int32(t.leadDays), Mode: t.mode, Priority: t.priority, EstimatedHours: t.hours,
		TechCode: p.tech, Active: active,
		CreatedAt: ptr(a.commissioned.Add(9 * time.Hour)), UpdatedAt: &g.now,
	}
	if t.intervalValue > 0 {
		r.IntervalValue, r.IntervalUnit, r.NextDueDate = ptr(int32(t.intervalValue)), ptr(t.intervalUnit), ptr(st.nextDate)
	}
	if t.meterInterval > 0 {
		r.MeterInterval, r.MeterUnit, r.NextDueMeter = ptr(t.meterInterval), ptr(t.meterUnit), ptr(st.nextMeter)
	}
	if !st.lastDone.IsZero() {
		r.LastCompletedDate = ptr(st.lastDone)
		if t.meterInterval > 0 {
			r.LastCompletedMeter = ptr(st.lastDoneMeter)
		}
	}
	if a.status == "RETIRED" {
		r.EndDate = ptr(a.end)
	}
	return r
}

// nextOccurrence is the due date of the plan's next occurrence and the day the
// daily pipeline generates its work order: lead_days before a calendar due, on
// the day the meter reaches a meter due, whichever comes first.
func (a *simAsset) nextOccurrence(t planTemplate, nextDate time.Time, nextMeter float64) (due, trigger time.Time, ok bool) {
	calendar := t.intervalValue > 0
	var md time.Time
	mok := false
	if t.meterInterval > 0 {
		md, mok = a.dateAtMeter(nextMeter, t.meterUnit)
	}
	ct := nextDate.AddDate(0, 0, -t.leadDays)
	switch {
	case calendar && mok && md.Before(ct):
		return md, md, true
	case calendar:
		return nextDate, ct, true
	case mok:
		return md, md, true
	}
	return time.Time{}, time.Time{}, false
}

// failures draws the asset's breakdowns month by month (see the hazard model
// at the top of this file).
func (g *generator) failures(rng *rand.Rand, a *simAsset) {
	hz := g.horizon(a)
	for m := later(g.histStart, a.commissioned); m.Before(hz); m = m.AddDate(0, 1, 0) {
		mEnd := m.AddDate(0, 1, 0)
		if mEnd.After(hz) {
			mEnd = hz
		}
		span := mEnd.Sub(m)
		mid := m.Add(span / 2)
		age := float64(mid.Sub(a.commissioned)) / float64(365.25*float64(day))
		from := mid.AddDate(-1, 0, 0)
		skipped, late := countBetween(a.skips, from, mid), countBetween(a.lates, from, mid)
		lambda := a.kind.baseHazard * math.Exp(ageCoef*age) *
			(1 + skipCoef*float64(skipped) + lateCoef*float64(late)) * math.Sqrt(a.usage) *
			float64(span) / float64(30.44*float64(day))
		for range poisson(rng, lambda) {
			at := m.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
			if at.Before(m) {
				at = m
			}
			g.failure(rng, a, at)
		}
	}
}

func pickFailure(rng *rand.Rand, k *vehicleKind) failureMode {
	total := 0
	for _, f := range k.failures {
		total += f.weight
	}
	r := rng.IntN(total)
	for _, f := range k.failures {
		if r < f.weight {
			return f
		}
		r -= f.weight
	}
	return k.failures[0]
}

// failurePriority moves the mode's typical priority one step either way
// sometimes; breakdowns skew towards HIGH and CRITICAL.
func failurePriority(rng *rand.Rand, typical string) string {
	i := slices.Index(Priorities, typical)
	switch r := rng.Float64(); {
	case r < 0.15:
		i--
	case r < 0.35:
		i++
	}
	return Priorities[max(0, min(len(Priorities)-1, i))]
}

var responseHours = map[string][2]float64{"CRITICAL": {0.25, 3}, "HIGH": {1, 24}, "MEDIUM": {4, 72}, "LOW": {24, 168}}

func (g *generator) failure(rng *rand.Rand, a *simAsset, at time.Time) {
	f := pickFailure(rng, a.kind)
	prio := failurePriority(rng, f.priority)
	resp := responseHours[prio]
	start := at.Add(time.Duration(uniform(rng, resp[0], resp[1]) * float64(time.Hour))).Truncate(time.Minute)
	hours := quarter(uniform(rng, f.minHours, f.maxHours))
	var wait time.Duration
	if rng.Float64() < f.partsWait {
		wait = time.Duration(1+rng.IntN(5)) * day
	}
	done := start.Add(wait + time.Duration(hours*float64(time.Hour)))
	w := workOrderRow{
		Type: "CORRECTIVE", Priority: prio, Title: f.title, Description: f.description,
		CreatedAt: ptr(at), TechCode: g.tech(rng, at),
	}
	hz := g.horizon(a)
	ended := !a.end.IsZero()
	switch {
	case rng.Float64() < 0.025:
		w.Status = "CANCELLED"
		w.Description += " Cancelled: duplicate report."
	case start.After(hz) && ended, done.After(hz) && ended:
		w.Status = "CANCELLED"
		w.Description += " Cancelled: vehicle taken out of service."
	case start.After(hz):
		w.Status = "OPEN"
		if rng.Float64() < 0.5 {
			w.TechCode = ""
		}
	case done.After(hz):
		w.Status, w.StartedAt = "IN_PROGRESS", ptr(start)
		if wait > 0 && start.Add(wait).After(hz) {
			w.Status = "ON_HOLD"
			w.Description += " Waiting for parts."
		}
	default:
		w.Status, w.StartedAt, w.CompletedAt, w.RepairHours = "COMPLETED", ptr(start), ptr(done), ptr(hours)
	}
	g.addWO(a, w)
}

// currentRepair gives a vehicle IN_MAINTENANCE the open repair that keeps it
// in the workshop.
func (g *generator) currentRepair(rng *rand.Rand, a *simAsset) {
	f := pickFailure(rng, a.kind)
	at := g.now.Add(-time.Duration(1+rng.IntN(10))*day - time.Duration(rng.IntN(600))*time.Minute).Truncate(time.Minute)
	start := at.Add(time.Duration(30+rng.IntN(300)) * time.Minute)
	w := workOrderRow{
		Type: "CORRECTIVE", Priority: Priorities[2+rng.IntN(2)], Title: f.title, Description: f.description,
		CreatedAt: ptr(at), StartedAt: ptr(start), TechCode: g.tech(rng, g.now), Status: "IN_PROGRESS",
	}
	if rng.Float64() < 0.3 {
		w.Status = "ON_HOLD"
		w.Description += " Waiting for parts."
	}
	g.addWO(a, w)
}

func (g *generator) inventory() {
	rng := rand.New(rand.NewPCG(g.o.Seed, streamInventory))
	for i := range g.o.InventoryItems {
		p := parts[i%len(parts)]
		name, cost := p.name, p.cost
		if i >= len(parts) {
			name = fmt.Sprintf("%s (supplier %d)", p.name, i/len(parts)+1)
			cost = math.Round(cost*(0.9+0.2*rng.Float64())*100) / 100
		}
		reorder := 2 + rng.IntN(19)
		qty := reorder + 1 + rng.IntN(3*reorder+10)
		if rng.Float64() < 0.15 {
			qty = rng.IntN(reorder + 1) // at or below the reorder level
		}
		updated := g.now.Add(-time.Duration(rng.IntN(60*24)) * time.Hour).Truncate(time.Minute)
		g.ds.inventory = append(g.ds.inventory, inventoryRow{
			SKU: fmt.Sprintf("SKU-%04d", i+1), Name: name, Category: p.category,
			Quantity: int32(qty), ReorderLevel: int32(reorder), UnitCost: cost,
			Location: stores[rng.IntN(len(stores))], UpdatedAt: &updated,
		})
	}
}

// helpers

func ptr[T any](v T) *T { return &v }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func quarter(v float64) float64 { return math.Round(v*4) / 4 }

func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

func unitOr(u string) string {
	if u == "" {
		return "km"
	}
	return u
}

func daysBetween(a, b time.Time) int { return int(b.Sub(a) / day) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// addInterval steps a date (midnight UTC) by a plan's calendar interval, as
// pmgen steps a plan without a schedule anchor: months and years keep the day
// of the month, clamped to the target month's last day (Jan 31 + 1 month =
// Feb 28).
func addInterval(t time.Time, v int, unit string) time.Time {
	iv := schedule.Interval{Value: v, Unit: schedule.Unit(unit)}
	return iv.Add(schedule.DateOf(t), 1, 0).Time()
}

func countBetween(ts []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range ts {
		if t.After(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// poisson draws from a Poisson distribution (Knuth; λ is small here).
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l || k > 50 {
			return k
		}
		k++
	}
}
