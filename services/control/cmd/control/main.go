// Command control runs the control service: it accepts pipeline triggers,
// projects step events into runs and steps, and serves the control API
// (gRPC and HTTP/JSON on one port) and the admin page.
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
)

func main() { service.Run(events.Control, app.Register) }
