using DataMarket.Catalog.Application;
using DataMarket.Catalog.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Mvc;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// HTTP API for sellers and buyers. The caller is named by the <c>X-Actor-Id</c> header until the gateway
/// brings real authentication; everything is scoped to that id.
/// </summary>
public static class CatalogApi
{
    public const string ActorHeader = "X-Actor-Id";

    public static IEndpointRouteBuilder MapCatalogApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api");
        var maxUpload = app.ServiceProvider.GetRequiredService<CatalogOptions>().MaxUploadBytes;

        api.MapPost("/listings", (HttpContext http, CreateListingRequest request, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var listing = await catalog.CreateListingAsync(Actor(http), request, ct);
                return Results.Created($"/api/listings/{listing.Id}", listing);
            }));

        api.MapPut("/listings/{id:guid}/data", (HttpContext http, Guid id, string? format, string? labelColumn, string? fileName, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var upload = UploadFrom(http, format, labelColumn, fileName);
                return Results.Ok(await catalog.UploadListingDataAsync(Actor(http), id, upload, http.Request.Body, ct));
            }))
            .WithMetadata(new RequestSizeLimitAttribute(maxUpload));

        api.MapGet("/listings", (HttpContext http, bool? mine, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.ListListingsAsync(Actor(http), mine ?? false, ct))));

        api.MapGet("/listings/{id:guid}", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetListingAsync(Actor(http), id, ct))));

        api.MapPost("/tasks", (HttpContext http, string? name, string? format, string? labelColumn, string? fileName, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var upload = UploadFrom(http, format, labelColumn, fileName);
                var task = await catalog.PostTestTaskAsync(Actor(http), new PostTestTaskRequest(name ?? upload.FileName, upload), http.Request.Body, ct);
                return Results.Created($"/api/tasks/{task.Id}", task);
            }))
            .WithMetadata(new RequestSizeLimitAttribute(maxUpload));

        api.MapPost("/valuations", (HttpContext http, RequestValuationRequest request, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var valuation = await catalog.RequestValuationAsync(Actor(http), request, ct);
                return Results.Accepted($"/api/valuations/{valuation.Id}", valuation);
            }));

        api.MapGet("/valuations/{id:guid}", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetValuationAsync(Actor(http), id, ct))));

        api.MapPost("/valuations/{id:guid}/cancel", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.CancelValuationAsync(Actor(http), id, ct))));

        api.MapGet("/valuations/{id:guid}/points", (HttpContext http, Guid id, int? offset, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetPointValuesAsync(Actor(http), id, offset ?? 0, limit ?? 100, ct))));

        return app;
    }

    private static string Actor(HttpContext http) => http.Request.Headers[ActorHeader].ToString().Trim();

    private static UploadOptions UploadFrom(HttpContext http, string? format, string? labelColumn, string? fileName)
    {
        var contentType = http.Request.ContentType ?? string.Empty;
        format ??= contentType.Contains("ndjson", StringComparison.OrdinalIgnoreCase) || contentType.Contains("jsonl", StringComparison.OrdinalIgnoreCase)
            ? "jsonl"
            : "csv";
        return new UploadOptions(format, labelColumn ?? "label", fileName ?? $"upload.{format}");
    }

    private static async Task<IResult> Run(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (CatalogException exception)
        {
            return Problem(exception);
        }
    }

    private static IResult Problem(CatalogException exception)
    {
        var status = exception.Kind switch
        {
            CatalogErrorKind.Invalid => StatusCodes.Status400BadRequest,
            CatalogErrorKind.NotFound => StatusCodes.Status404NotFound,
            CatalogErrorKind.Conflict => StatusCodes.Status409Conflict,
            CatalogErrorKind.Unauthorized => StatusCodes.Status401Unauthorized,
            CatalogErrorKind.QuotaExceeded => StatusCodes.Status429TooManyRequests,
            _ => StatusCodes.Status500InternalServerError,
        };
        var extensions = new Dictionary<string, object?>();
        if (exception.Data is { } data)
        {
            extensions["file"] = data.Source;
            extensions["row"] = data.Row;
            extensions["column"] = data.Column;
        }

        if (exception.Errors is { } errors)
        {
            return Results.ValidationProblem(errors, exception.Message, statusCode: status, extensions: extensions);
        }

        return Results.Problem(exception.Message, statusCode: status, extensions: extensions);
    }
}
