using DataMarket.ServiceDefaults.Messaging;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddValuationWorker(builder.Configuration);
builder.Services.AddDataMarketBus(builder.Configuration, bus => bus.AddValuationConsumers());
// The queues KEDA scales the workers on (k8s/base/keda.yaml), so an operator sees what the scaler sees.
builder.Services.AddQueueDepthGauge(
    builder.Configuration, ValuationQueues.Requests, ValuationQueues.Shards, ValuationQueues.ShardReports, ValuationQueues.GpuShards);

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapMetrics();
app.Run();
