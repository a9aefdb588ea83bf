var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddLedgerWorker(builder.Configuration);
builder.Services.AddDataMarketBus(builder.Configuration, bus => bus.AddLedgerConsumers());

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapMetrics();
app.Run();
