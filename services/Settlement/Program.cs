var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddSettlement(builder.Configuration);
builder.Services.AddServiceAuthentication(builder.Configuration);
builder.Services.AddDataMarketBus(builder.Configuration);

var app = builder.Build();
app.UseProblemResponses();
app.UseAuthentication();
app.UseAuthorization();
app.MapDefaultEndpoints();
app.MapMetrics();
app.MapSettlementApi();
app.Run();
