using System.Text.Json.Serialization;
using DataMarket.ServiceDefaults.Http;
using DataMarket.ServiceDefaults.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

public static class ServiceDefaultsExtensions
{
    /// <summary>Health checks, problem details, JSON conventions and the shared blob store.</summary>
    public static IHostApplicationBuilder AddServiceDefaults(this IHostApplicationBuilder builder)
    {
        builder.Services.AddDataMarketDefaults(builder.Configuration);
        return builder;
    }

    public static IServiceCollection AddDataMarketDefaults(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddProblemDetails();
        // Binding failures throw (instead of an empty 400) so BadRequestProblemHandler can say what was wrong.
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);
        services.AddExceptionHandler<BadRequestProblemHandler>();
        services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        services.Configure<JsonOptions>(options =>
        {
            options.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
            // Standard errors are NaN when a task has a single test point; JSON has no NaN, so write it as text.
            options.SerializerOptions.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals;
        });
        var storage = configuration.GetSection(StorageOptions.SectionName).Get<StorageOptions>() ?? new StorageOptions();
        services.AddSingleton(storage);
        services.AddSingleton<ContentAddressedBlobStore>();
        return services;
    }

    /// <summary>
    /// Every error answer is a problem-details body: exceptions (binding failures, 413, anything unexpected) through the
    /// exception handler, and bare status codes (an unknown route, a malformed id in the path) through status code pages.
    /// </summary>
    public static IApplicationBuilder UseProblemResponses(this IApplicationBuilder app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    /// <summary><c>/health</c> (ready: every check) and <c>/alive</c> (live: the process answers).</summary>
    public static IEndpointRouteBuilder MapDefaultEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/health");
        app.MapHealthChecks("/alive", new HealthCheckOptions { Predicate = check => check.Tags.Contains("live") });
        return app;
    }
}
