using DataMarket.Catalog.Application;
using DataMarket.Catalog.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Mvc;
using DataMarket.ServiceDefaults.Security;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// HTTP API for sellers and buyers. The caller is the subject of the token the gateway signed (no header names a
/// caller); role policies say who may call what, and everything is scoped to the caller's account id.
/// </summary>
public static class CatalogApi
{
    public static IEndpointRouteBuilder MapCatalogApi(this IEndpointRouteBuilder app)
    {
        app.MapDataMarketOpenApi();
        var api = app.MapGroup("/api").RequireAuthorization().WithTags("catalog");
        var maxUpload = app.ServiceProvider.GetRequiredService<CatalogOptions>().MaxUploadBytes;

        api.MapPost("/listings", (HttpContext http, CreateListingRequest request, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var listing = await catalog.CreateListingAsync(Actor(http), request, ct, IdempotencyKey(http));
                return Results.Created($"/api/listings/{listing.Id}", listing);
            }))
            .RequireAuthorization(Roles.Seller)
            .WithSummary("Create a draft listing (sellers)")
            .Produces<ListingView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapPut("/listings/{id:guid}/data", (HttpContext http, Guid id, string? format, string? labelColumn, string? fileName, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var upload = UploadFrom(http, format, labelColumn, fileName);
                return Results.Ok(await catalog.UploadListingDataAsync(Actor(http), id, upload, http.Request.Body, ct));
            }))
            .RequireAuthorization(Roles.Seller)
            .WithMetadata(new RequestSizeLimitAttribute(maxUpload))
            .WithSummary("Upload a listing's data (CSV or JSON lines in the body) and list it (sellers)")
            .Produces<ListingView>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/listings", (HttpContext http, bool? mine, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.ListListingsAsync(Actor(http), mine ?? false, ct))))
            .WithSummary("Listed datasets and the caller's own drafts (mine=true: only the caller's)")
            .Produces<IReadOnlyList<ListingView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/listings/{id:guid}", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetListingAsync(Actor(http), id, ct))))
            .WithSummary("One listing")
            .Produces<ListingView>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapPost("/tasks", (HttpContext http, string? name, string? format, string? labelColumn, string? fileName, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var upload = UploadFrom(http, format, labelColumn, fileName);
                var task = await catalog.PostTestTaskAsync(Actor(http), new PostTestTaskRequest(name ?? upload.FileName, upload), http.Request.Body, ct, IdempotencyKey(http));
                return Results.Created($"/api/tasks/{task.Id}", task);
            }))
            .RequireAuthorization(Roles.Buyer)
            .WithMetadata(new RequestSizeLimitAttribute(maxUpload))
            .WithSummary("Post a test task (CSV or JSON lines in the body; buyers)")
            .Produces<TestTaskView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/tasks", (HttpContext http, int? offset, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.ListTestTasksAsync(Actor(http), offset ?? 0, limit ?? 100, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("The caller's test tasks (buyers)")
            .Produces<IReadOnlyList<TestTaskView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/tasks/{id:guid}", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetTestTaskAsync(Actor(http), id, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("One of the caller's test tasks (buyers)")
            .Produces<TestTaskView>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        var maxModel = app.ServiceProvider.GetRequiredService<CatalogOptions>().MaxModelBytes;
        api.MapPost("/models", (HttpContext http, string? name, string? fileName, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var file = fileName ?? "model.safetensors";
                var model = await catalog.UploadModelAsync(Actor(http), new UploadModelRequest(name ?? file, file), http.Request.Body, ct, IdempotencyKey(http));
                return Results.Created($"/api/models/{model.Id}", model);
            }))
            .RequireAuthorization(Roles.Buyer)
            .WithMetadata(new RequestSizeLimitAttribute(maxModel))
            .WithSummary("Upload a proxy-model checkpoint for LoGra (a safetensors tabular MLP in the body; buyers)")
            .Produces<ProxyModelView>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/models", (HttpContext http, int? offset, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.ListModelsAsync(Actor(http), offset ?? 0, limit ?? 100, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("The caller's proxy models (buyers)")
            .Produces<IReadOnlyList<ProxyModelView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/models/{id:guid}", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetModelAsync(Actor(http), id, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("One of the caller's proxy models (buyers)")
            .Produces<ProxyModelView>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/valuations", (HttpContext http, int? offset, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.ListValuationsAsync(Actor(http), offset ?? 0, limit ?? 100, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("The caller's valuations (buyers)")
            .Produces<IReadOnlyList<ValuationView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapPost("/valuations", (HttpContext http, RequestValuationRequest request, CatalogService catalog, CancellationToken ct) =>
            Run(async () =>
            {
                var valuation = await catalog.RequestValuationAsync(Actor(http), request, ct, IdempotencyKey(http));
                return Results.Accepted($"/api/valuations/{valuation.Id}", valuation);
            }))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("Request a valuation of listings for a test task (buyers; rate-limited)")
            .Produces<ValuationView>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/valuations/{id:guid}", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetValuationAsync(Actor(http), id, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("One of the caller's valuations: status, progress and per-seller values with 95% intervals (buyers)")
            .Produces<ValuationView>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapPost("/valuations/{id:guid}/cancel", (HttpContext http, Guid id, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.CancelValuationAsync(Actor(http), id, ct))))
            .WithSummary("Cancel a valuation that has not finished")
            .Produces<ValuationView>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/valuations/{id:guid}/points", (HttpContext http, Guid id, int? offset, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetPointValuesAsync(Actor(http), id, offset ?? 0, limit ?? 100, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("Per-point values of a completed valuation, a page at a time (buyers)")
            .Produces<PointPage>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/valuations/{id:guid}/points/lowest", (HttpContext http, Guid id, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.GetLowestPointValuesAsync(Actor(http), id, limit ?? 10, ct))))
            .RequireAuthorization(Roles.Buyer)
            .WithSummary("The rows of a completed valuation with the lowest values, the likeliest mislabelled: row numbers and values, never row contents (buyers)")
            .Produces<IReadOnlyList<PointValueView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        api.MapGet("/listings/valuations", (HttpContext http, int? offset, int? limit, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.ListReceivedValuesAsync(Actor(http), offset ?? 0, limit ?? 100, ct))))
            .RequireAuthorization(Roles.Seller)
            .WithSummary("What completed valuations found the caller's listings worth: method and value, never the buyer or the task (sellers)")
            .Produces<IReadOnlyList<ReceivedValueView>>()
            .ProducesProblem(StatusCodes.Status400BadRequest);

        // Called by the gateway when an account is deleted, after its owner downloaded the export; not a public route.
        api.MapDelete("/account-data", (HttpContext http, CatalogService catalog, CancellationToken ct) =>
            Run(async () => Results.Ok(await catalog.EraseAccountDataAsync(Actor(http), ct))))
            .ExcludeFromDescription();

        return app;
    }

    private static string Actor(HttpContext http) => http.User.AccountId();

    /// <summary>The <c>Idempotency-Key</c> header, when sent: a retry with the same key gets the first request's resource.</summary>
    private static string? IdempotencyKey(HttpContext http) =>
        http.Request.Headers.TryGetValue("Idempotency-Key", out var key) ? key.ToString() : null;

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
            CatalogErrorKind.Forbidden => StatusCodes.Status403Forbidden,
            CatalogErrorKind.TooLarge => StatusCodes.Status413PayloadTooLarge,
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
