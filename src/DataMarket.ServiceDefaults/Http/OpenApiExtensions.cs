using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.OpenApi;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The OpenAPI document a service publishes at <c>/openapi/NAME.json</c>: the public API as callers reach it through
/// the gateway, with an API key sent as a bearer token, and no server address (so a reference page loaded from the
/// gateway sends its calls to the gateway, not to the service's internal address).
/// </summary>
public static class OpenApiExtensions
{
    public const string ApiKeyScheme = "apiKey";

    /// <param name="tag">When given, only the calls tagged so: in one process (serve, demo) a host carries several
    /// services' calls, and each document describes its own service's.</param>
    public static IServiceCollection AddDataMarketOpenApi(this IServiceCollection services, string documentName, string title, string description, string? tag = null)
    {
        services.AddOpenApi(documentName, options =>
        {
            // Only the JSON API: the web UI's pages are not part of the public API.
            options.ShouldInclude = api => api.RelativePath?.StartsWith("api/", StringComparison.Ordinal) == true
                && (tag is null || api.ActionDescriptor.EndpointMetadata.OfType<Microsoft.AspNetCore.Http.Metadata.ITagsMetadata>().Any(t => t.Tags.Contains(tag)));
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = title;
                document.Info.Description = description;
                document.Servers = [];
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiKeyScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API key (dmk_...) made by sign-up, `datamarket accounts create` or POST /api/me/keys, sent as `Authorization: Bearer KEY`.",
                };
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, document)] = [] }];
                return Task.CompletedTask;
            });
        });
        return services;
    }

    /// <summary>The document is public (it describes the API, it holds no data).</summary>
    public static IEndpointRouteBuilder MapDataMarketOpenApi(this IEndpointRouteBuilder app)
    {
        app.MapOpenApi().AllowAnonymous();
        return app;
    }
}
