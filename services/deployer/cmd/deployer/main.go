// Command deployer runs the deployer service: it registers and deploys the model and batch-scores the fleet (etl_ml_training, step 4).
// Until its pipeline step is built it serves health checks and dead-letters
// the events pushed to it, which fails its run step with that reason.
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

func main() { service.Main(service.Plain(events.Deployer)) }
