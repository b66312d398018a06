// Command extractor runs the extractor service: it streams assets and work orders from PostgreSQL to Parquet in the bucket (etl_ml_training, step 1).
// Until its pipeline step is built it serves health checks and dead-letters
// the events pushed to it, which fails its run step with that reason.
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
)

func main() { service.Main(service.Plain(events.Extractor)) }
