// Command reporter runs the reporter service: it computes the weekly KPIs and builds the HTML and PDF report (weekly_kpi_report, step 1).
// Until its pipeline step is built it serves health checks and dead-letters
// the events pushed to it, which fails its run step with that reason.
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

func main() { service.Main(service.Plain(events.Reporter)) }
