// Command pmgen runs the pmgen service: it turns due maintenance plans into work orders exactly once (preventive_maintenance, step 1).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/pmgen"
)

func main() { service.Run(events.Pmgen, pmgen.Register) }
