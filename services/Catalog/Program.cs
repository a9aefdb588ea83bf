var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddCatalog(builder.Configuration);
builder.Services.AddServiceAuthentication(builder.Configuration);
builder.Services.AddDataMarketBus(builder.Configuration, bus => bus.AddCatalogConsumers());

var app = builder.Build();
app.UseProblemResponses();
app.UseAuthentication();
app.UseAuthorization();
app.MapDefaultEndpoints();
app.MapMetrics();
app.MapCatalogApi();
app.Run();
