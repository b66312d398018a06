// Command reporter runs the reporter service: it computes the weekly KPIs and builds the HTML and PDF report (weekly_kpi_report, step 1).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter"
)

func main() { service.Run(events.Reporter, reporter.Register) }
