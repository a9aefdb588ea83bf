var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddGateway(builder.Configuration);

var app = builder.Build();
app.UseGateway();
app.MapDefaultEndpoints();
app.MapGateway();
app.Run();
