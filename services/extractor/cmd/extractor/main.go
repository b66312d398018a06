// Command extractor runs the extractor service: it streams assets, work
// orders and maintenance plans from PostgreSQL to Parquet in the bucket
// (etl_ml_training, step 1).
package main

import (
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extractor"
)

func main() { service.Run(events.Extractor, extractor.Register) }
