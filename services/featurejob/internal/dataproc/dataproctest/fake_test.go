package dataproctest

import (
	"testing"

	dataproc "cloud.google.com/go/dataproc/v2/apiv1"
	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The generated clients' long-running-operation helpers work against the
// fake's Operations service.
func TestClusterOperationsThroughTheClient(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	cc, err := dataproc.NewClusterControllerClient(ctx, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	op, err := cc.CreateCluster(ctx, &dataprocpb.CreateClusterRequest{ProjectId: "p", Region: "r",
		Cluster: &dataprocpb.Cluster{ProjectId: "p", ClusterName: "c1", Labels: map[string]string{"run_id": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if meta, err := op.Metadata(); err != nil || meta.GetClusterName() != "c1" || meta.GetOperationType() != "CREATE" {
		t.Errorf("metadata %v, %v", meta, err)
	}
	c, err := op.Wait(ctx) // the first poll completes it (ClusterCreateReads 0)
	if err != nil || c.GetStatus().GetState() != dataprocpb.ClusterStatus_RUNNING || c.GetClusterUuid() == "" {
		t.Fatalf("create: %v, %v", c, err)
	}
	if _, err := cc.CreateCluster(ctx, &dataprocpb.CreateClusterRequest{ProjectId: "p", Region: "r",
		Cluster: &dataprocpb.Cluster{ProjectId: "p", ClusterName: "c1"}}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second create: %v", err)
	}
	it := cc.ListClusters(ctx, &dataprocpb.ListClustersRequest{ProjectId: "p", Region: "r"})
	n := 0
	for {
		_, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Errorf("listed %d clusters", n)
	}

	s.SetBehavior(Behavior{DeleteReads: 2})
	del, err := cc.DeleteCluster(ctx, &dataprocpb.DeleteClusterRequest{ProjectId: "p", Region: "r", ClusterName: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; !del.Done(); i++ {
		if err := del.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if i > 5 {
			t.Fatal("delete operation never finished")
		}
	}
	if _, err := cc.GetCluster(ctx, &dataprocpb.GetClusterRequest{ProjectId: "p", Region: "r", ClusterName: "c1"}); status.Code(err) != codes.NotFound {
		t.Errorf("after delete: %v", err)
	}
	if len(s.Clusters()) != 0 || len(s.DeleteClusterRequests()) != 1 {
		t.Errorf("clusters %v, deletes %v", s.Clusters(), s.DeleteClusterRequests())
	}
}

func TestFailedOperations(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	cc, err := dataproc.NewClusterControllerClient(ctx, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	s.SetBehavior(Behavior{FailClusterCreate: "quota exceeded"})
	op, err := cc.CreateCluster(ctx, &dataprocpb.CreateClusterRequest{ProjectId: "p", Region: "r",
		Cluster: &dataprocpb.Cluster{ProjectId: "p", ClusterName: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Wait(ctx); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("create wait: %v", err)
	}
	if c := s.Clusters(); len(c) != 1 || c[0].Status.State != dataprocpb.ClusterStatus_ERROR || c[0].Status.Detail != "quota exceeded" {
		t.Errorf("clusters = %v", c)
	}

	s.SetBehavior(Behavior{FailDeleteOp: "disk busy"})
	del, err := cc.DeleteCluster(ctx, &dataprocpb.DeleteClusterRequest{ProjectId: "p", Region: "r", ClusterName: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := del.Poll(ctx); err == nil || !del.Done() {
		t.Errorf("delete poll: %v (done %v)", err, del.Done())
	}
	if len(s.Clusters()) != 1 {
		t.Error("a failed delete removed the cluster")
	}
}

func TestBatchLifecycleAndCancel(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	bc, err := dataproc.NewBatchControllerClient(ctx, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	req := func(id string) *dataprocpb.CreateBatchRequest {
		return &dataprocpb.CreateBatchRequest{Parent: "projects/p/locations/r", BatchId: id,
			Batch: &dataprocpb.Batch{BatchConfig: &dataprocpb.Batch_PysparkBatch{PysparkBatch: &dataprocpb.PySparkBatch{
				MainPythonFileUri: "gs://b/code/f.py"}}}}
	}
	if _, err := bc.CreateBatch(ctx, req("Bad_Id")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("invalid id: %v", err)
	}

	op, err := bc.CreateBatch(ctx, req("b-ok"))
	if err != nil {
		t.Fatal(err)
	}
	var got *dataprocpb.Batch
	for i := 0; got == nil; i++ {
		if got, err = op.Poll(ctx); err != nil || i > 5 {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	if got.State != dataprocpb.Batch_SUCCEEDED || got.Operation != op.Name() || len(got.StateHistory) != 2 {
		t.Errorf("batch = %v", got)
	}

	s.SetBehavior(Behavior{Hang: true})
	op2, err := bc.CreateBatch(ctx, req("b-hang"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: op2.Name()}); err != nil {
		t.Fatal(err)
	}
	if _, err := op2.Poll(ctx); status.Code(err) != codes.Canceled {
		t.Errorf("poll after cancel: %v", err)
	}
	b, err := bc.GetBatch(ctx, &dataprocpb.GetBatchRequest{Name: "projects/p/locations/r/batches/b-hang"})
	if err != nil || b.State != dataprocpb.Batch_CANCELLED {
		t.Errorf("cancelled batch = %v, %v", b, err)
	}
	if err := bc.DeleteBatch(ctx, &dataprocpb.DeleteBatchRequest{Name: b.Name}); err != nil {
		t.Error(err)
	}
}

func TestJobsFailWhenTheirClusterIsDeleted(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	s.SetBehavior(Behavior{Hang: true})
	cc, err := dataproc.NewClusterControllerClient(ctx, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	jc, err := dataproc.NewJobControllerClient(ctx, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Close()
	submit := &dataprocpb.SubmitJobRequest{ProjectId: "p", Region: "r", Job: &dataprocpb.Job{
		Reference: &dataprocpb.JobReference{JobId: "j1"}, Placement: &dataprocpb.JobPlacement{ClusterName: "c1"},
		TypeJob: &dataprocpb.Job_PysparkJob{PysparkJob: &dataprocpb.PySparkJob{MainPythonFileUri: "gs://b/f.py"}}}}
	if _, err := jc.SubmitJob(ctx, submit); status.Code(err) != codes.NotFound {
		t.Errorf("submit without cluster: %v", err)
	}
	op, err := cc.CreateCluster(ctx, &dataprocpb.CreateClusterRequest{ProjectId: "p", Region: "r",
		Cluster: &dataprocpb.Cluster{ProjectId: "p", ClusterName: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := jc.SubmitJob(ctx, submit); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.DeleteCluster(ctx, &dataprocpb.DeleteClusterRequest{ProjectId: "p", Region: "r", ClusterName: "c1"}); err != nil {
		t.Fatal(err)
	}
	j, err := jc.GetJob(ctx, &dataprocpb.GetJobRequest{ProjectId: "p", Region: "r", JobId: "j1"})
	if err != nil || j.Status.State != dataprocpb.JobStatus_ERROR || !j.Done {
		t.Errorf("job = %v, %v", j, err)
	}
}
