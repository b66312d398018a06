package fleet

// The static material the generator draws from: vehicle kinds with their
// usage, maintenance programmes and failure modes, names, parts.

// planTemplate is a maintenance programme item; a zero intervalValue means
// meter-only, a zero meterInterval calendar-only.
type planTemplate struct {
	name, description string
	intervalValue     int
	intervalUnit      string
	meterInterval     float64
	meterUnit         string
	leadDays          int
	mode              string
	priority          string
	hours             float64
}

// failureMode is a kind of breakdown a corrective work order repairs.
type failureMode struct {
	title, description string
	priority           string  // typical; the generator moves it one step either way sometimes
	minHours, maxHours float64 // repair effort
	partsWait          float64 // probability of waiting days for parts
	weight             int
}

type vehicleKind struct {
	typ          string
	weight       int      // share of the fleet
	label        string   // for asset names
	models       []string // "Make|Model"
	kmPerYear    float64  // mean odometer growth
	kmPerHour    float64  // average speed, engine hours = km / kmPerHour (0: see hoursPerYear)
	hoursPerYear float64  // engine hours when there is no odometer (forklifts)
	baseHazard   float64  // expected failures per month of a new vehicle with full maintenance
	plans        []planTemplate
	failures     []failureMode
}

var (
	tInspection = planTemplate{name: "Annual safety inspection",
		description:   "Statutory roadworthiness inspection: brakes, steering, lights, emissions, bodywork.",
		intervalValue: 1, intervalUnit: "years", leadDays: 30, mode: "fixed", priority: "HIGH", hours: 3}
	tOilLight = planTemplate{name: "Engine oil and filter service",
		description:   "Replace engine oil and oil filter; check fluid levels, belts and wipers. Whichever comes first: 6 months or 15,000 km.",
		intervalValue: 6, intervalUnit: "months", meterInterval: 15000, meterUnit: "km", leadDays: 7, mode: "floating", priority: "MEDIUM", hours: 1.5}
	tOilTruck = planTemplate{name: "Engine oil and filter service",
		description:   "Replace engine oil, oil and fuel filters; grease chassis points. Whichever comes first: 3 months or 30,000 km.",
		intervalValue: 3, intervalUnit: "months", meterInterval: 30000, meterUnit: "km", leadDays: 7, mode: "floating", priority: "MEDIUM", hours: 2.5}
	tOilBus = planTemplate{name: "Engine oil and filter service",
		description:   "Replace engine oil, oil and fuel filters; check coolant and belts. Whichever comes first: 3 months or 20,000 km.",
		intervalValue: 3, intervalUnit: "months", meterInterval: 20000, meterUnit: "km", leadDays: 7, mode: "floating", priority: "MEDIUM", hours: 2.5}
	tTyres = planTemplate{name: "Tyre rotation and inspection",
		description:   "Rotate tyres, check tread depth, pressures and wheel nut torque.",
		meterInterval: 20000, meterUnit: "km", mode: "fixed", priority: "LOW", hours: 1}
	tTyresTrailer = planTemplate{name: "Tyre and wheel-end inspection",
		description:   "Check tread depth, pressures, wheel bearings and wheel nut torque.",
		meterInterval: 30000, meterUnit: "km", mode: "fixed", priority: "LOW", hours: 1}
	tBrakes = planTemplate{name: "Brake system inspection",
		description:   "Inspect pads, discs, drums, lines and air system; measure brake performance.",
		intervalValue: 6, intervalUnit: "months", leadDays: 14, mode: "floating", priority: "HIGH", hours: 2}
	tCabin = planTemplate{name: "Air conditioning and cabin filter service",
		description:   "Replace cabin filter, check refrigerant charge and heater.",
		intervalValue: 1, intervalUnit: "years", leadDays: 14, mode: "fixed", priority: "LOW", hours: 1}
	tTacho = planTemplate{name: "Tachograph calibration",
		description:   "Two-yearly tachograph calibration and seal check.",
		intervalValue: 2, intervalUnit: "years", leadDays: 30, mode: "fixed", priority: "MEDIUM", hours: 1}
	tAxle = planTemplate{name: "Axle, suspension and coupling check",
		description:   "Check kingpin, fifth-wheel coupling, air suspension and axle alignment.",
		intervalValue: 3, intervalUnit: "months", leadDays: 7, mode: "floating", priority: "MEDIUM", hours: 1.5}
	tForkliftService = planTemplate{name: "Drive unit and hydraulic service",
		description:   "Service drive unit, change hydraulic filter, check hoses. Whichever comes first: 6 months or 500 hours.",
		intervalValue: 6, intervalUnit: "months", meterInterval: 500, meterUnit: "hours", mode: "fixed", priority: "MEDIUM", hours: 2}
	tMast = planTemplate{name: "Mast, chains and forks check",
		description:   "Monthly check of mast, lift chains, forks and safety devices.",
		intervalValue: 1, intervalUnit: "months", leadDays: 3, mode: "fixed", priority: "MEDIUM", hours: 0.75}
	tBattery = planTemplate{name: "Traction battery service",
		description:   "Top up electrolyte, clean terminals, check charger.",
		intervalValue: 12, intervalUnit: "weeks", mode: "floating", priority: "LOW", hours: 0.5}
)

var (
	fBattery = failureMode{title: "Battery failure", description: "Vehicle does not start; battery or alternator fault.",
		priority: "HIGH", minHours: 0.5, maxHours: 1.5, partsWait: 0.1, weight: 10}
	fPuncture = failureMode{title: "Flat tyre", description: "Puncture or tyre damage reported by the driver.",
		priority: "MEDIUM", minHours: 0.5, maxHours: 1.5, partsWait: 0.05, weight: 12}
	fBrakes = failureMode{title: "Brake fault", description: "Driver reports poor braking, noise or warning light.",
		priority: "CRITICAL", minHours: 1, maxHours: 5, partsWait: 0.3, weight: 8}
	fEngineLight = failureMode{title: "Engine warning light", description: "Engine management light on; read fault codes and repair.",
		priority: "MEDIUM", minHours: 1, maxHours: 4, partsWait: 0.25, weight: 10}
	fCoolant = failureMode{title: "Coolant leak and overheating", description: "Engine temperature high; coolant loss.",
		priority: "HIGH", minHours: 1.5, maxHours: 6, partsWait: 0.3, weight: 6}
	fLights = failureMode{title: "Lighting fault", description: "Headlight, indicator or brake light not working.",
		priority: "LOW", minHours: 0.5, maxHours: 2, partsWait: 0.1, weight: 8}
	fSuspension = failureMode{title: "Suspension damage", description: "Broken spring, shock absorber or air bag.",
		priority: "HIGH", minHours: 2, maxHours: 8, partsWait: 0.4, weight: 5}
	fTransmission = failureMode{title: "Transmission failure", description: "Clutch slipping or gearbox not engaging gears.",
		priority: "CRITICAL", minHours: 4, maxHours: 16, partsWait: 0.6, weight: 3}
	fBody = failureMode{title: "Body damage", description: "Minor collision or door, mirror or panel damage.",
		priority: "LOW", minHours: 1, maxHours: 6, partsWait: 0.3, weight: 6}
	fDPF = failureMode{title: "Exhaust and DPF fault", description: "Particulate filter blocked or exhaust sensor fault.",
		priority: "MEDIUM", minHours: 2, maxHours: 6, partsWait: 0.4, weight: 5}
	fBearing = failureMode{title: "Wheel bearing failure", description: "Noise or heat at a wheel end.",
		priority: "HIGH", minHours: 2, maxHours: 5, partsWait: 0.4, weight: 4}
	fAirCompressor = failureMode{title: "Air compressor failure", description: "Air pressure builds slowly; brake air system warning.",
		priority: "CRITICAL", minHours: 3, maxHours: 8, partsWait: 0.5, weight: 3}
	fTailLift = failureMode{title: "Tail-lift malfunction", description: "Tail-lift does not raise or lower.",
		priority: "MEDIUM", minHours: 1, maxHours: 5, partsWait: 0.3, weight: 4}
	fHydraulic = failureMode{title: "Hydraulic leak", description: "Hydraulic oil leak at hoses or cylinders.",
		priority: "HIGH", minHours: 1, maxHours: 4, partsWait: 0.3, weight: 6}
	fMast = failureMode{title: "Lift mechanism fault", description: "Mast judders or forks do not hold the load.",
		priority: "HIGH", minHours: 1, maxHours: 4, partsWait: 0.3, weight: 6}
	fCharger = failureMode{title: "Traction battery or charger fault", description: "Truck does not hold charge.",
		priority: "HIGH", minHours: 1, maxHours: 3, partsWait: 0.3, weight: 6}
	fBusDoor = failureMode{title: "Passenger door fault", description: "Door mechanism or sensor fault.",
		priority: "HIGH", minHours: 1, maxHours: 3, partsWait: 0.2, weight: 6}
	fCoupling = failureMode{title: "Coupling and kingpin wear", description: "Excess play at the coupling.",
		priority: "HIGH", minHours: 2, maxHours: 5, partsWait: 0.4, weight: 4}
)

var kinds = []vehicleKind{
	{typ: "car", weight: 30, label: "Car", kmPerYear: 22000, kmPerHour: 45, baseHazard: 0.05,
		models:   []string{"Toyota|Corolla", "Volkswagen|Golf", "Skoda|Octavia", "Ford|Focus", "Hyundai|Ioniq", "Renault|Megane"},
		plans:    []planTemplate{tInspection, tOilLight, tTyres, tCabin},
		failures: []failureMode{fBattery, fPuncture, fBrakes, fEngineLight, fCoolant, fLights, fSuspension, fTransmission, fBody, fDPF}},
	{typ: "van", weight: 28, label: "Van", kmPerYear: 32000, kmPerHour: 40, baseHazard: 0.065,
		models:   []string{"Ford|Transit", "Mercedes-Benz|Sprinter", "Volkswagen|Crafter", "Renault|Master", "Fiat|Ducato", "Iveco|Daily"},
		plans:    []planTemplate{tInspection, tOilLight, tTyres, tBrakes, tCabin},
		failures: []failureMode{fBattery, fPuncture, fBrakes, fEngineLight, fCoolant, fLights, fSuspension, fTransmission, fBody, fDPF, fBearing}},
	{typ: "truck", weight: 18, label: "Truck", kmPerYear: 95000, kmPerHour: 60, baseHazard: 0.09,
		models:   []string{"Volvo|FH", "Scania|R450", "MAN|TGX", "DAF|XF", "Mercedes-Benz|Actros", "Iveco|S-Way"},
		plans:    []planTemplate{tInspection, tOilTruck, tTyres, tBrakes, tTacho},
		failures: []failureMode{fBattery, fPuncture, fBrakes, fEngineLight, fCoolant, fLights, fSuspension, fTransmission, fBody, fDPF, fBearing, fAirCompressor, fTailLift, fHydraulic}},
	{typ: "bus", weight: 8, label: "Bus", kmPerYear: 65000, kmPerHour: 25, baseHazard: 0.10,
		models:   []string{"Mercedes-Benz|Citaro", "Volvo|7900", "MAN|Lion's City", "Solaris|Urbino 12", "Iveco|Crossway"},
		plans:    []planTemplate{tInspection, tOilBus, tTyres, tBrakes, tCabin, tTacho},
		failures: []failureMode{fBattery, fPuncture, fBrakes, fEngineLight, fCoolant, fLights, fSuspension, fTransmission, fBody, fDPF, fAirCompressor, fBusDoor}},
	{typ: "trailer", weight: 9, label: "Trailer", kmPerYear: 70000, baseHazard: 0.035,
		models:   []string{"Schmitz Cargobull|S.KO Cool", "Krone|Profi Liner", "Kögel|Cargo", "Wielton|Curtain Master"},
		plans:    []planTemplate{tInspection, tTyresTrailer, tBrakes, tAxle},
		failures: []failureMode{fPuncture, fBrakes, fLights, fSuspension, fBody, fBearing, fTailLift, fCoupling}},
	{typ: "forklift", weight: 7, label: "Forklift", hoursPerYear: 1600, baseHazard: 0.07,
		models:   []string{"Toyota|8FBE18", "Linde|E20", "Jungheinrich|EFG 216", "Still|RX20-18", "Hyster|J2.0XN"},
		plans:    []planTemplate{tInspection, tForkliftService, tMast, tBattery},
		failures: []failureMode{fPuncture, fBrakes, fLights, fHydraulic, fMast, fCharger, fBody}},
}

var depots = []string{"North Depot", "South Depot", "Central Yard", "Harbour Depot", "Airport Logistics Hub", "East Workshop"}

var firstNames = []string{"Anna", "Ben", "Carla", "David", "Elif", "Frank", "Greta", "Hassan", "Ines", "Jonas",
	"Katrin", "Luca", "Maria", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tanja", "Umut", "Vera", "Wojciech", "Yusuf", "Zoe"}

var lastNames = []string{"Schmidt", "Novak", "Rossi", "Dubois", "Yilmaz", "Jansen", "Kowalski", "García", "Berg",
	"Müller", "Costa", "Horvat", "Lindqvist", "Petrov", "Moreau", "Fischer", "Santos", "Keller", "Wagner", "Nowak"}

var skills = []string{"general", "general", "mechanical", "mechanical", "electrical", "hydraulics", "tyres", "bodywork"}

type part struct {
	name, category string
	cost           float64
}

var parts = []part{
	{"Engine oil 5W-30, 5 L", "fluids", 38.5}, {"Engine oil 10W-40, 20 L", "fluids", 96},
	{"Coolant concentrate, 5 L", "fluids", 24.9}, {"AdBlue, 10 L", "fluids", 14.5},
	{"Hydraulic oil HLP 46, 20 L", "fluids", 79}, {"Brake fluid DOT 4, 1 L", "fluids", 11.2},
	{"Screen wash, 5 L", "fluids", 6.9}, {"Gear oil 75W-90, 1 L", "fluids", 16.4},
	{"Oil filter (car/van)", "filters", 9.8}, {"Oil filter (truck/bus)", "filters", 34},
	{"Air filter (car/van)", "filters", 14.6}, {"Air filter (truck/bus)", "filters", 62},
	{"Fuel filter (diesel)", "filters", 27.5}, {"Cabin pollen filter", "filters", 12.9},
	{"Hydraulic return filter", "filters", 41}, {"DPF cleaning kit", "filters", 88},
	{"Brake pads front (car)", "brakes", 46}, {"Brake pads rear (car)", "brakes", 39},
	{"Brake discs front pair (van)", "brakes", 118}, {"Brake pads set (truck axle)", "brakes", 164},
	{"Brake drum (trailer)", "brakes", 210}, {"Brake chamber type 24", "brakes", 72},
	{"Air dryer cartridge", "brakes", 58}, {"Brake hose", "brakes", 19.5},
	{"Tyre 205/55 R16", "tyres", 84}, {"Tyre 235/65 R16C", "tyres", 118},
	{"Tyre 315/80 R22.5", "tyres", 395}, {"Tyre 385/65 R22.5 (trailer)", "tyres", 342},
	{"Forklift solid tyre 18x7-8", "tyres", 156}, {"Valve stem set", "tyres", 8.5},
	{"Battery 12 V 70 Ah", "electrical", 112}, {"Battery 12 V 180 Ah", "electrical", 239},
	{"Headlight bulb H7", "electrical", 7.9}, {"LED tail lamp", "electrical", 64},
	{"Alternator (van)", "electrical", 289}, {"Starter motor (truck)", "electrical", 455},
	{"Fuse assortment", "electrical", 12}, {"Traction battery cell connector", "electrical", 18.5},
	{"Wiper blade 600 mm", "body", 17.5}, {"Mirror glass (truck)", "body", 44},
	{"Door handle (van)", "body", 36}, {"Mud flap", "body", 22},
	{"Fan belt", "engine", 31}, {"Timing belt kit", "engine", 176},
	{"Water pump", "engine", 139}, {"Glow plug", "engine", 19.9},
	{"Thermostat", "engine", 28}, {"Turbo hose", "engine", 74},
	{"Shock absorber (van)", "suspension", 94}, {"Air spring (truck/trailer)", "suspension", 187},
	{"Wheel bearing kit", "suspension", 121}, {"Kingpin bushing set", "suspension", 86},
	{"Hydraulic hose assembly", "hydraulics", 48}, {"Lift chain (forklift)", "hydraulics", 265},
	{"Tilt cylinder seal kit", "hydraulics", 39}, {"Grease cartridge, 400 g", "consumables", 5.6},
	{"Cable ties, 100 pcs", "consumables", 4.2}, {"Nitrile gloves, box", "consumables", 9.9},
	{"Brake cleaner, 500 ml", "consumables", 4.8}, {"Tachograph seal set", "consumables", 15},
}

var stores = []string{"Central Stores", "North Depot Store", "South Depot Store", "Van Stock"}
