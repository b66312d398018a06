// Command notifier runs the notifier service: it sends technician notifications, summaries, reports and alerts (last step of every pipeline).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/app"
)

func main() { service.Run(events.Notifier, app.Register) }
