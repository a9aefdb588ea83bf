var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddValuationWorker(builder.Configuration);
builder.Services.AddDataMarketBus(builder.Configuration, bus => bus.AddValuationConsumers());

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapMetrics();
app.Run();
