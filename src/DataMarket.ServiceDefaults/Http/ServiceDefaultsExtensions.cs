using System.Text.Json.Serialization;
using DataMarket.ServiceDefaults.Http;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.IdentityModel.Tokens;
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
            // Names come from users: < > & ' are escaped (\u003C ...) so a page that pastes a JSON answer into HTML
            // cannot be made to run a script; other text stays readable.
            options.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Create(System.Text.Unicode.UnicodeRanges.All);
            // Standard errors are NaN when a task has a single test point; JSON has no NaN, so write it as text.
            options.SerializerOptions.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals;
        });
        var storage = configuration.GetSection(StorageOptions.SectionName).Get<StorageOptions>() ?? new StorageOptions();
        services.AddSingleton(storage);
        services.AddSingleton<ContentAddressedBlobStore>();
        services.AddDataMarketTelemetry(configuration);
        return services;
    }

    /// <summary>
    /// The services' side of authentication: every call must carry a token the gateway signed (JwtBearer with the
    /// shared <c>Auth:SigningKey</c>), and the role policies (<c>seller</c>, <c>buyer</c>, <c>operator</c>) read its role claim.
    /// </summary>
    public static IServiceCollection AddServiceAuthentication(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(ServiceAuthOptions.SectionName).Get<ServiceAuthOptions>() ?? new ServiceAuthOptions();
        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ServiceTokenIssuer>();
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(jwt =>
        {
            jwt.MapInboundClaims = false;
            jwt.TokenValidationParameters = new TokenValidationParameters
            {
                ValidIssuer = ServiceAuthOptions.Issuer,
                ValidAudience = ServiceAuthOptions.Audience,
                IssuerSigningKey = options.Key(),
                NameClaimType = "sub",
                RoleClaimType = "role",
                ClockSkew = TimeSpan.FromSeconds(30),
            };
        });
        services.AddAuthorizationBuilder().AddRolePolicies();
        return services;
    }

    /// <summary>One policy per role, named like the role; operators may do what the policy's role may.</summary>
    public static AuthorizationBuilder AddRolePolicies(this AuthorizationBuilder authorization)
    {
        authorization.SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        foreach (var role in Roles.All)
        {
            authorization.AddPolicy(role, policy => policy.RequireAuthenticatedUser().RequireRole(role));
        }

        return authorization;
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
        // Probes come from the orchestrator, which holds no account.
        app.MapHealthChecks("/health").AllowAnonymous();
        app.MapHealthChecks("/alive", new HealthCheckOptions { Predicate = check => check.Tags.Contains("live") }).AllowAnonymous();
        return app;
    }
}
