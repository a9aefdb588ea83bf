using System.Threading.RateLimiting;
using DataMarket.Gateway.Application;
using DataMarket.Gateway.Infrastructure;
using DataMarket.Gateway.Model;
using DataMarket.ServiceDefaults.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Scalar.AspNetCore;
using Yarp.ReverseProxy.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

public static class GatewayExtensions
{
    public const string ValuationRequestsPolicy = "valuation-requests";

    /// <summary>The web UI's cookie sign-in; API calls never accept it (only keys), so a page cannot be made to call the API for its visitor.</summary>
    public const string WebScheme = "web";
    public const string WebPolicy = "web";

    /// <summary>The few minutes between an operator's password and their authenticator code: opens only the code page.</summary>
    public const string SecondFactorScheme = "web-second-factor";

    /// <summary>The session claim saying the second factor was checked (operators' pages require it).</summary>
    public const string SecondFactorClaim = "amr";
    private const string ProxyPolicy = "authenticated";

    /// <summary>
    /// The public edge: accounts and API keys in the gateway's own database, sign-in by key, rate limits, and YARP
    /// routes to the services that forward each request with a token the gateway signs for the caller.
    /// </summary>
    public static IServiceCollection AddGateway(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>() ?? new GatewayOptions();
        options.ConnectionString ??= configuration.GetConnectionString("Gateway");
        services.AddSingleton(options);
        var auth = configuration.GetSection(ServiceAuthOptions.SectionName).Get<ServiceAuthOptions>() ?? new ServiceAuthOptions();
        services.TryAddSingleton(auth);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ServiceTokenIssuer>();
        services.AddGatewayAccounts(options);

        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddCookie(WebScheme, cookie =>
            {
                cookie.Cookie.Name = "datamarket.session";
                SecureCookie(cookie.Cookie, options);
                cookie.LoginPath = "/signin";
                cookie.LogoutPath = "/signout";
                cookie.AccessDeniedPath = "/denied";
                cookie.ExpireTimeSpan = TimeSpan.FromHours(8);
                cookie.SlidingExpiration = true;
                // A deleted account's sessions end at their next request, in every browser that holds one.
                cookie.Events.OnValidatePrincipal = async context =>
                {
                    var accounts = context.HttpContext.RequestServices.GetRequiredService<AccountService>();
                    if (await accounts.FindAsync(context.Principal!.AccountId(), context.HttpContext.RequestAborted) is null)
                    {
                        context.RejectPrincipal();
                        await context.HttpContext.SignOutAsync(WebScheme);
                    }
                };
            })
            .AddCookie(SecondFactorScheme, cookie =>
            {
                cookie.Cookie.Name = "datamarket.second-factor";
                SecureCookie(cookie.Cookie, options);
                cookie.LoginPath = "/signin";
                cookie.ExpireTimeSpan = TimeSpan.FromMinutes(5);
                cookie.SlidingExpiration = false;
            });
        var authorization = services.AddAuthorizationBuilder()
            .AddRolePolicies()
            .AddPolicy(ProxyPolicy, policy => policy.RequireAuthenticatedUser())
            .AddPolicy(WebPolicy, policy => policy.AddAuthenticationSchemes(WebScheme).RequireAuthenticatedUser());
        foreach (var role in Roles.All)
        {
            authorization.AddPolicy(WebPolicy + "-" + role, policy =>
            {
                policy.AddAuthenticationSchemes(WebScheme).RequireAuthenticatedUser().RequireRole(role);
                if (role == Roles.Operator)
                {
                    policy.RequireClaim(SecondFactorClaim, "otp");
                }
            });
        }

        services.AddWebUi(options);
        services.AddDataMarketOpenApi(
            "gateway", "DataMarket gateway API",
            "Sign-up, the caller's account and API keys, and the operators' account and audit calls. The catalog's calls (listings, tasks, valuations) are in the catalog document. Every error is an RFC 7807 problem-details body.");

        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
                {
                    context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                await context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context.HttpContext,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests",
                        Detail = "the rate limit for this kind of request is reached; try again after the Retry-After interval",
                    },
                });
            };
            // Key checks per client address: generous, but a key cannot be guessed at network speed.
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
                http.Request.Headers.ContainsKey("Authorization") || http.Request.Headers.ContainsKey("X-Api-Key") || http.Request.Path.StartsWithSegments("/api/signup")
                    || (HttpMethods.IsPost(http.Request.Method) && (http.Request.Path.StartsWithSegments("/signin") || http.Request.Path.StartsWithSegments("/signup")))
                    ? RateLimitPartition.GetFixedWindowLimiter(http.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => Window(options.SignInAttemptsPerMinute))
                    : RateLimitPartition.GetNoLimiter("anonymous"));
            limiter.AddPolicy(ValuationRequestsPolicy, http =>
                RateLimitPartition.GetFixedWindowLimiter(http.User.AccountId(), _ => Window(options.ValuationRequestsPerMinute)));
        });

        services.AddReverseProxy()
            .LoadFromMemory(Routes(options), Clusters(options))
            .AddTransforms(context =>
            {
                ServiceTokenTransform.Apply(context, context.Services.GetRequiredService<ServiceTokenIssuer>());
                MoneyAuditTransform.Apply(context);
            });
        return services;
    }

    /// <summary>
    /// Server-rendered pages (Razor Pages compiled into this assembly, found even when another program hosts the
    /// gateway), signed in by cookie, each folder behind its role's policy; antiforgery tokens on every form.
    /// </summary>
    private static void AddWebUi(this IServiceCollection services, GatewayOptions options)
    {
        services.AddRazorPages(pages =>
            {
                pages.Conventions.AuthorizeFolder("/", WebPolicy);
                pages.Conventions.AllowAnonymousToPage("/Index");
                pages.Conventions.AllowAnonymousToPage("/SignIn");
                pages.Conventions.AllowAnonymousToPage("/SignUp");
                pages.Conventions.AllowAnonymousToPage("/Denied");
                // These check their own cookie: the second-factor step's, and a reset link's token.
                pages.Conventions.AllowAnonymousToPage("/SecondFactor");
                pages.Conventions.AllowAnonymousToPage("/Reset");
                pages.Conventions.AuthorizeFolder("/Seller", WebPolicy + "-" + Roles.Seller);
                pages.Conventions.AuthorizeFolder("/Buyer", WebPolicy + "-" + Roles.Buyer);
                pages.Conventions.AuthorizeFolder("/Operator", WebPolicy + "-" + Roles.Operator);
            })
            .ConfigureApplicationPartManager(parts =>
            {
                var assembly = typeof(DataMarket.Gateway.GatewayEntryPoint).Assembly;
                if (!parts.ApplicationParts.OfType<Microsoft.AspNetCore.Mvc.ApplicationParts.AssemblyPart>().Any(p => p.Assembly == assembly))
                {
                    parts.ApplicationParts.Add(new Microsoft.AspNetCore.Mvc.ApplicationParts.CompiledRazorAssemblyPart(assembly));
                    parts.ApplicationParts.Add(new Microsoft.AspNetCore.Mvc.ApplicationParts.AssemblyPart(assembly));
                }
            });
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "datamarket.antiforgery";
            SecureCookie(antiforgery.Cookie, options);
        });
        services.Configure<FormOptions>(form => form.MultipartBodyLengthLimit = options.MaxUploadBytes);
        services.AddHttpClient<DataMarket.Gateway.Web.CatalogClient>((provider, http) => DataMarket.Gateway.Web.CatalogClient.Configure(http, provider.GetRequiredService<GatewayOptions>()));
        services.AddHttpClient<DataMarket.Gateway.Web.SettlementClient>((provider, http) => DataMarket.Gateway.Web.SettlementClient.Configure(http, provider.GetRequiredService<GatewayOptions>()));
    }

    /// <summary>Script cannot read it, other sites' requests do not carry it, and it travels only over HTTPS unless configured for plain-HTTP loopback.</summary>
    private static void SecureCookie(CookieBuilder cookie, GatewayOptions options)
    {
        cookie.HttpOnly = true;
        cookie.SameSite = SameSiteMode.Strict;
        cookie.SecurePolicy = options.SecureCookies ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
        cookie.IsEssential = true;
    }

    /// <summary>The accounts database and service alone (the CLI's <c>accounts create</c> needs no proxy).</summary>
    public static IServiceCollection AddGatewayAccounts(this IServiceCollection services, GatewayOptions options)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddDbContext<GatewayDbContext>(db =>
        {
            switch (options.Database)
            {
                case GatewayDatabase.Sqlite:
                    db.UseSqlite(options.ConnectionString ?? "Data Source=datamarket-gateway.db");
                    break;
                case GatewayDatabase.Postgres:
                    db.UseNpgsql(options.ConnectionString ?? DataMarket.ServiceDefaults.LocalDefaults.PostgresConnectionString);
                    break;
                default:
                    throw new InvalidOperationException($"unknown gateway database '{options.Database}'");
            }
        });
        services.AddScoped<AccountService>();
        services.AddScoped<SecondFactorService>();
        services.AddHostedService<GatewayDatabaseInitializer>();
        return services;
    }

    /// <summary>Problem responses, body-size limit, sign-in, authorisation and rate limits, in that order.</summary>
    public static WebApplication UseGateway(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<GatewayOptions>();
        app.UseProblemResponses();
        app.Use((http, next) =>
        {
            if (!http.Request.Path.StartsWithSegments("/api") && !http.Request.Path.StartsWithSegments("/api-reference") && !http.Request.Path.StartsWithSegments("/openapi"))
            {
                // Pages run no script and are framed by nobody; styles are inline, charts are inline SVG.
                var headers = http.Response.Headers;
                headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                headers["Referrer-Policy"] = "same-origin";
            }

            return next(http);
        });
        app.Use(async (http, next) =>
        {
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            {
                size.MaxRequestBodySize = options.MaxUploadBytes;
            }

            // Refused before a byte is forwarded when the size is declared; the services check undeclared sizes.
            if (http.Request.ContentLength > options.MaxUploadBytes)
            {
                http.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = StatusCodes.Status413PayloadTooLarge,
                        Title = "The request body is too large",
                        Detail = $"the limit is {options.MaxUploadBytes} bytes (Gateway__MaxUploadBytes)",
                    },
                });
                return;
            }

            await next(http);
        });
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        return app;
    }

    public static WebApplication MapGateway(this WebApplication app)
    {
        app.MapAccountsApi();
        app.MapDataMarketOpenApi();
        // The reference page for both documents; the catalog's document is forwarded from the catalog (route below).
        app.MapScalarApiReference("/api-reference", reference => reference
                .WithTitle("DataMarket API")
                .AddDocument("gateway", "Gateway (accounts and keys)", "/openapi/gateway.json")
                .AddDocument("catalog", "Catalog (listings, tasks, valuations)", "/openapi/catalog.json", isDefault: true))
            .AllowAnonymous();
        app.MapRazorPages();
        app.MapReverseProxy();
        return app;
    }

    private static FixedWindowRateLimiterOptions Window(int permitsPerMinute) => new()
    {
        PermitLimit = Math.Max(1, permitsPerMinute),
        Window = TimeSpan.FromMinutes(1),
        QueueLimit = 0,
    };

    private static List<RouteConfig> Routes(GatewayOptions options)
    {
        var routes = new List<RouteConfig>
        {
            new() { RouteId = "valuation-requests", ClusterId = "catalog", AuthorizationPolicy = ProxyPolicy, RateLimiterPolicy = ValuationRequestsPolicy,
                Match = new RouteMatch { Path = "/api/valuations", Methods = ["POST"] } },
        };
        // The catalog's OpenAPI document describes a public API, so anyone may read it.
        routes.Add(new RouteConfig { RouteId = "catalog-openapi", ClusterId = "catalog", AuthorizationPolicy = "Anonymous", Match = new RouteMatch { Path = "/openapi/catalog.json", Methods = ["GET"] } });
        foreach (var resource in new[] { "listings", "tasks", "valuations", "models" })
        {
            routes.Add(new RouteConfig { RouteId = resource, ClusterId = "catalog", AuthorizationPolicy = ProxyPolicy, Match = new RouteMatch { Path = $"/api/{resource}/{{**rest}}" } });
        }

        if (options.SettlementAddress is not null)
        {
            foreach (var resource in new[] { "quotes", "purchases", "settlements", "statements", "terms", "sellers" })
            {
                routes.Add(new RouteConfig { RouteId = resource, ClusterId = "settlement", AuthorizationPolicy = ProxyPolicy, Match = new RouteMatch { Path = $"/api/{resource}/{{**rest}}" } });
            }

            // Stripe signs its webhooks instead of holding an account: forwarded without a token, verified by the service.
            routes.Add(new RouteConfig { RouteId = "stripe-webhook", ClusterId = "settlement", AuthorizationPolicy = "Anonymous", Match = new RouteMatch { Path = "/api/payments/stripe/webhook", Methods = ["POST"] } });
        }

        return routes;
    }

    private static List<ClusterConfig> Clusters(GatewayOptions options)
    {
        var clusters = new List<ClusterConfig>
        {
            new() { ClusterId = "catalog", Destinations = new Dictionary<string, DestinationConfig> { ["catalog"] = new() { Address = options.CatalogAddress } } },
        };
        if (options.SettlementAddress is not null)
        {
            clusters.Add(new ClusterConfig { ClusterId = "settlement", Destinations = new Dictionary<string, DestinationConfig> { ["settlement"] = new() { Address = options.SettlementAddress } } });
        }

        return clusters;
    }
}
