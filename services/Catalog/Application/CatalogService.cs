using DataMarket.Catalog.Infrastructure;
using DataMarket.Catalog.Model;
using DataMarket.Contracts;
using DataMarket.ServiceDefaults.Storage;
using DataMarket.Valuation;
using DataMarket.Valuation.Data;
using FluentValidation;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Application;

/// <summary>
/// The catalog's use cases, shared by the HTTP API and the in-process demo. Every method takes the acting
/// user's id: sellers change only their own listings, buyers see only their own tasks and valuations.
/// </summary>
public sealed class CatalogService(
    CatalogDbContext db,
    Outbox outbox,
    ContentAddressedBlobStore blobs,
    CatalogOptions options,
    IValidator<CreateListingRequest> createListingValidator,
    IValidator<UploadOptions> uploadValidator,
    IValidator<PostTestTaskRequest> testTaskValidator,
    IValidator<RequestValuationRequest> valuationValidator,
    IValidator<UploadModelRequest> modelValidator)
{
    public const int MaxPageSize = 1000;

    public const int MaxLowestPoints = 100;

    public async Task<ListingView> CreateListingAsync(string sellerId, CreateListingRequest request, CancellationToken cancellationToken, string? idempotencyKey = null)
    {
        RequireActor(sellerId);
        await ValidateAsync(createListingValidator, request, cancellationToken);
        if (await FindIdempotentAsync(sellerId, idempotencyKey, Operations.CreateListing, cancellationToken) is { } existing)
        {
            return await GetListingAsync(sellerId, existing, cancellationToken);
        }

        var listing = new Listing
        {
            Id = Guid.NewGuid(),
            SellerId = sellerId,
            Name = request.Name.Trim(),
            Description = request.Description?.Trim(),
            Status = ListingStatus.Draft,
            CreatedAt = DateTime.UtcNow,
        };
        db.Listings.Add(listing);
        Remember(sellerId, idempotencyKey, Operations.CreateListing, listing.Id);
        if (await SaveIdempotentAsync(sellerId, idempotencyKey, Operations.CreateListing, cancellationToken) is { } raced)
        {
            return await GetListingAsync(sellerId, raced, cancellationToken);
        }

        return ListingView.From(listing);
    }

    /// <summary>Validates the whole file before anything is kept; a rejected upload leaves no blob and no change.</summary>
    public async Task<ListingView> UploadListingDataAsync(
        string sellerId, Guid listingId, UploadOptions upload, Stream content, CancellationToken cancellationToken)
    {
        RequireActor(sellerId);
        await ValidateAsync(uploadValidator, upload, cancellationToken);
        var listing = await db.Listings.SingleOrDefaultAsync(l => l.Id == listingId && l.SellerId == sellerId, cancellationToken)
            ?? throw CatalogException.NotFound("listing");
        if (listing.Status != ListingStatus.Draft)
        {
            throw new CatalogException(CatalogErrorKind.Conflict,
                $"listing {listingId} already has data; listed data is immutable, create a new listing for new data");
        }

        var (staged, summary) = await StageAndValidateAsync(upload, content, expectedFeatures: null, cancellationToken);
        using (staged)
        {
            staged.Commit();
            listing.Status = ListingStatus.Listed;
            listing.BlobId = staged.BlobId;
            listing.Format = DatasetFormats.Parse(upload.Format).Name();
            listing.LabelColumn = upload.LabelColumn;
            listing.Rows = summary.Rows;
            listing.Features = summary.Features;
            listing.ListedAt = DateTime.UtcNow;
            outbox.Add(new DatasetListed
            {
                ListingId = listing.Id,
                SellerId = listing.SellerId,
                Name = listing.Name,
                BlobId = staged.BlobId,
                Format = listing.Format,
                Rows = listing.Rows,
                Features = listing.Features,
                ListedAt = listing.ListedAt.Value,
            });
            await outbox.SaveAndSendAsync(cancellationToken);
        }

        return ListingView.From(listing);
    }

    public async Task<IReadOnlyList<ListingView>> ListListingsAsync(string actorId, bool mineOnly, CancellationToken cancellationToken)
    {
        RequireActor(actorId);
        var query = db.Listings.AsNoTracking();
        // Others' drafts are private; listed data is public metadata (not the data itself).
        query = mineOnly
            ? query.Where(l => l.SellerId == actorId)
            : query.Where(l => l.Status == ListingStatus.Listed || l.SellerId == actorId);
        var listings = await query.OrderBy(l => l.CreatedAt).ToListAsync(cancellationToken);
        return listings.Select(ListingView.From).ToList();
    }

    public async Task<ListingView> GetListingAsync(string actorId, Guid listingId, CancellationToken cancellationToken)
    {
        RequireActor(actorId);
        var listing = await db.Listings.AsNoTracking()
            .SingleOrDefaultAsync(l => l.Id == listingId && (l.Status == ListingStatus.Listed || l.SellerId == actorId), cancellationToken)
            ?? throw CatalogException.NotFound("listing");
        return ListingView.From(listing);
    }

    public async Task<TestTaskView> PostTestTaskAsync(
        string buyerId, PostTestTaskRequest request, Stream content, CancellationToken cancellationToken, string? idempotencyKey = null)
    {
        RequireActor(buyerId);
        await ValidateAsync(testTaskValidator, request, cancellationToken);
        // A retry is answered before its body is read: the first request's task stands.
        if (await FindIdempotentAsync(buyerId, idempotencyKey, Operations.PostTestTask, cancellationToken) is { } existing)
        {
            return await GetTestTaskAsync(buyerId, existing, cancellationToken);
        }

        var (staged, summary) = await StageAndValidateAsync(request.Upload, content, expectedFeatures: null, cancellationToken);
        using (staged)
        {
            staged.Commit();
            var task = new TestTask
            {
                Id = Guid.NewGuid(),
                BuyerId = buyerId,
                Name = request.Name.Trim(),
                BlobId = staged.BlobId,
                Format = DatasetFormats.Parse(request.Upload.Format).Name(),
                LabelColumn = request.Upload.LabelColumn,
                Rows = summary.Rows,
                Features = summary.Features,
                PostedAt = DateTime.UtcNow,
            };
            db.TestTasks.Add(task);
            outbox.Add(new TestTaskPosted
            {
                TaskId = task.Id,
                BuyerId = buyerId,
                BlobId = task.BlobId,
                Rows = task.Rows,
                Features = task.Features,
                PostedAt = task.PostedAt,
            });
            Remember(buyerId, idempotencyKey, Operations.PostTestTask, task.Id);
            if (await SaveIdempotentAsync(buyerId, idempotencyKey, Operations.PostTestTask, cancellationToken) is { } raced)
            {
                return await GetTestTaskAsync(buyerId, raced, cancellationToken);
            }

            return TestTaskView.From(task);
        }
    }

    /// <summary>
    /// Stores a buyer's proxy-model checkpoint once its header shows a usable tabular MLP (safetensors only; see
    /// <see cref="ProxyCheckpoint"/>); nothing is kept when it does not.
    /// </summary>
    public async Task<ProxyModelView> UploadModelAsync(
        string buyerId, UploadModelRequest request, Stream content, CancellationToken cancellationToken, string? idempotencyKey = null)
    {
        RequireActor(buyerId);
        await ValidateAsync(modelValidator, request, cancellationToken);
        if (await FindIdempotentAsync(buyerId, idempotencyKey, Operations.UploadModel, cancellationToken) is { } existing)
        {
            return await GetModelAsync(buyerId, existing, cancellationToken);
        }

        StagedBlob staged;
        try
        {
            staged = await blobs.StageAsync(content, options.MaxModelBytes, cancellationToken);
        }
        catch (BlobTooLargeException exception)
        {
            throw new CatalogException(CatalogErrorKind.TooLarge, $"the checkpoint is larger than the limit of {exception.MaxBytes} bytes (Catalog__MaxModelBytes)");
        }

        using (staged)
        {
            ProxyCheckpointSummary summary;
            await using (var file = File.OpenRead(staged.Path))
            {
                summary = ProxyCheckpoint.Inspect(file, request.FileName);
            }

            staged.Commit();
            var model = new ProxyModel
            {
                Id = Guid.NewGuid(),
                BuyerId = buyerId,
                Name = request.Name.Trim(),
                BlobId = staged.BlobId,
                InputWidth = summary.InputWidth,
                HiddenWidths = string.Join(',', summary.HiddenWidths),
                OutputWidth = summary.OutputWidth,
                Bytes = staged.Length,
                UploadedAt = DateTime.UtcNow,
            };
            db.Models.Add(model);
            Remember(buyerId, idempotencyKey, Operations.UploadModel, model.Id);
            if (await SaveIdempotentAsync(buyerId, idempotencyKey, Operations.UploadModel, cancellationToken) is { } raced)
            {
                return await GetModelAsync(buyerId, raced, cancellationToken);
            }

            return ProxyModelView.From(model);
        }
    }

    public async Task<ProxyModelView> GetModelAsync(string buyerId, Guid modelId, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        var model = await db.Models.AsNoTracking().SingleOrDefaultAsync(m => m.Id == modelId && m.BuyerId == buyerId, cancellationToken)
            ?? throw CatalogException.NotFound("model");
        return ProxyModelView.From(model);
    }

    /// <summary>The buyer's own proxy models, newest first.</summary>
    public async Task<IReadOnlyList<ProxyModelView>> ListModelsAsync(string buyerId, int offset, int limit, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        RequirePage(offset, limit);
        var models = await db.Models.AsNoTracking().Where(m => m.BuyerId == buyerId)
            .OrderByDescending(m => m.UploadedAt).ThenBy(m => m.Id).Skip(offset).Take(limit).ToListAsync(cancellationToken);
        return models.Select(ProxyModelView.From).ToList();
    }

    public async Task<ValuationView> RequestValuationAsync(
        string buyerId, RequestValuationRequest request, CancellationToken cancellationToken, string? idempotencyKey = null)
    {
        RequireActor(buyerId);
        await ValidateAsync(valuationValidator, request, cancellationToken);
        if (request.CallbackUrl is { } callback && callback.StartsWith("http:", StringComparison.OrdinalIgnoreCase) && !options.Callbacks.AllowHttp)
        {
            throw new CatalogException(CatalogErrorKind.Invalid, "the request is invalid",
                new Dictionary<string, string[]> { ["callbackUrl"] = ["the callback URL must use https"] });
        }

        if (await FindIdempotentAsync(buyerId, idempotencyKey, Operations.RequestValuation, cancellationToken) is { } existing)
        {
            return await CreatedViewAsync(buyerId, existing, cancellationToken);
        }

        var task = await db.TestTasks.SingleOrDefaultAsync(t => t.Id == request.TaskId && t.BuyerId == buyerId, cancellationToken)
            ?? throw CatalogException.NotFound("test task");
        var ids = request.ListingIds.ToList();
        var found = await db.Listings.Where(l => ids.Contains(l.Id)).ToDictionaryAsync(l => l.Id, cancellationToken);
        var errors = new Dictionary<string, string[]>();
        var listings = new List<Listing>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            var key = $"listingIds[{i}]";
            if (!found.TryGetValue(ids[i], out var listing) || (listing.Status != ListingStatus.Listed && listing.SellerId != buyerId))
            {
                errors[key] = [$"listing {ids[i]} does not exist"];
            }
            else if (listing.Status != ListingStatus.Listed)
            {
                errors[key] = [$"listing {ids[i]} has no data yet"];
            }
            else if (listing.Features != task.Features)
            {
                errors[key] = [$"listing {ids[i]} has {listing.Features} features but the test task has {task.Features}"];
            }
            else
            {
                listings.Add(listing);
            }
        }

        if (errors.Count > 0)
        {
            throw new CatalogException(CatalogErrorKind.Invalid, "some listings cannot be valued against this task", errors);
        }

        ProxyModel? model = null;
        if (request.ModelId is { } modelId)
        {
            model = await db.Models.AsNoTracking().SingleOrDefaultAsync(m => m.Id == modelId && m.BuyerId == buyerId, cancellationToken)
                ?? throw CatalogException.NotFound("model");
            if (model.InputWidth != task.Features)
            {
                throw new CatalogException(CatalogErrorKind.Invalid, "the model does not fit the task",
                    new Dictionary<string, string[]> { ["modelId"] = [$"the model takes {model.InputWidth} features but the test task has {task.Features}"] });
            }
        }

        var active = await db.Valuations.CountAsync(
            v => v.BuyerId == buyerId && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running), cancellationToken);
        if (active >= options.MaxActiveValuationsPerBuyer)
        {
            throw new CatalogException(CatalogErrorKind.QuotaExceeded,
                $"you have {active} valuations pending or running, the limit is {options.MaxActiveValuationsPerBuyer}; wait for one to finish or cancel one");
        }

        var valuation = new ValuationRun
        {
            Id = Guid.NewGuid(),
            BuyerId = buyerId,
            TaskId = task.Id,
            Method = request.Method ?? ValuationMethods.KnnShapley,
            K = request.K ?? ValuationMethods.DefaultK,
            TaskType = request.TaskType ?? ValuationMethods.Classification,
            ListingIds = string.Join(',', ids),
            Status = ValuationStatus.Pending,
            RequestedAt = DateTime.UtcNow,
            CallbackUrl = request.CallbackUrl,
            CallbackSecret = request.CallbackUrl is null ? null : ValuationCallbacks.NewSecret(),
            ModelId = model?.Id,
        };
        db.Valuations.Add(valuation);
        outbox.Add(new RequestValuation
        {
            ValuationId = valuation.Id,
            BuyerId = buyerId,
            TaskId = task.Id,
            Task = new DatasetReference { BlobId = task.BlobId, Format = task.Format, LabelColumn = task.LabelColumn },
            Listings = listings.Select(l => new ValuationListing
            {
                ListingId = l.Id,
                SellerId = l.SellerId,
                Data = new DatasetReference { BlobId = l.BlobId!, Format = l.Format!, LabelColumn = l.LabelColumn! },
            }).ToList(),
            Method = valuation.Method,
            K = valuation.K,
            TaskType = valuation.TaskType,
            // Precedence for asymmetric valuation: sellers by their earliest listing among those valued.
            GroupOrder = listings.OrderBy(l => l.ListedAt).ThenBy(l => l.Id).Select(l => l.SellerId).Distinct().ToList(),
            Device = request.Device ?? "auto",
            Model = model is null ? null : new ModelReference { BlobId = model.BlobId, Format = "safetensors" },
            LograMode = request.LograMode ?? "dot",
            RequestedAt = valuation.RequestedAt,
        });
        Remember(buyerId, idempotencyKey, Operations.RequestValuation, valuation.Id);
        if (await SaveIdempotentAsync(buyerId, idempotencyKey, Operations.RequestValuation, cancellationToken) is { } raced)
        {
            return await CreatedViewAsync(buyerId, raced, cancellationToken);
        }

        return ToView(valuation) with { CallbackSecret = valuation.CallbackSecret };
    }

    /// <summary>The answer to a request (also to its replay with the same key): the only one that carries the callback secret.</summary>
    private async Task<ValuationView> CreatedViewAsync(string buyerId, Guid valuationId, CancellationToken cancellationToken)
    {
        var view = await GetValuationAsync(buyerId, valuationId, cancellationToken);
        var secret = await db.Valuations.Where(v => v.Id == valuationId).Select(v => v.CallbackSecret).SingleAsync(cancellationToken);
        return view with { CallbackSecret = secret };
    }

    /// <summary>Stops a pending or running valuation; workers drop its remaining shards.</summary>
    public async Task<ValuationView> CancelValuationAsync(string buyerId, Guid valuationId, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        var valuation = await db.Valuations.Include(v => v.Sellers)
            .SingleOrDefaultAsync(v => v.Id == valuationId && v.BuyerId == buyerId, cancellationToken)
            ?? throw CatalogException.NotFound($"valuation {valuationId}");
        var now = DateTime.UtcNow;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var moved = await db.Valuations
            .Where(v => v.Id == valuationId && (v.Status == ValuationStatus.Pending || v.Status == ValuationStatus.Running))
            .ExecuteUpdateAsync(set => set.SetProperty(v => v.Status, ValuationStatus.Cancelled).SetProperty(v => v.FinishedAt, now), cancellationToken);
        if (moved == 0)
        {
            throw new CatalogException(CatalogErrorKind.Conflict, $"valuation {valuationId} is already {valuation.Status}");
        }

        outbox.Add(new ValuationCancelled { ValuationId = valuationId, CancelledAt = now });
        await ValuationCallbacks.EnqueueAsync(db, valuationId, cancellationToken);
        await outbox.SaveAndSendAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        valuation.Status = ValuationStatus.Cancelled;
        valuation.FinishedAt = now;
        return ToView(valuation);
    }

    public async Task<ValuationView> GetValuationAsync(string buyerId, Guid valuationId, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        var valuation = await db.Valuations.AsNoTracking().Include(v => v.Sellers)
            .SingleOrDefaultAsync(v => v.Id == valuationId && v.BuyerId == buyerId, cancellationToken)
            ?? throw CatalogException.NotFound("valuation");
        var notice = valuation.CallbackUrl is null ? null : await db.CallbackNotices.AsNoTracking().SingleOrDefaultAsync(n => n.ValuationId == valuationId, cancellationToken);
        return ToView(valuation) with { Callback = notice is null ? null : ValuationCallbacks.View(notice) };
    }

    public async Task<TestTaskView> GetTestTaskAsync(string buyerId, Guid taskId, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        var task = await db.TestTasks.AsNoTracking()
            .SingleOrDefaultAsync(t => t.Id == taskId && t.BuyerId == buyerId, cancellationToken)
            ?? throw CatalogException.NotFound("test task");
        return TestTaskView.From(task);
    }

    /// <summary>The buyer's own test tasks, newest first.</summary>
    public async Task<IReadOnlyList<TestTaskView>> ListTestTasksAsync(string buyerId, int offset, int limit, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        RequirePage(offset, limit);
        var tasks = await db.TestTasks.AsNoTracking().Where(t => t.BuyerId == buyerId)
            .OrderByDescending(t => t.PostedAt).ThenBy(t => t.Id).Skip(offset).Take(limit).ToListAsync(cancellationToken);
        return tasks.Select(TestTaskView.From).ToList();
    }

    /// <summary>The buyer's own valuations, newest first, without per-seller results (read one valuation for those).</summary>
    public async Task<IReadOnlyList<ValuationView>> ListValuationsAsync(string buyerId, int offset, int limit, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        RequirePage(offset, limit);
        var valuations = await db.Valuations.AsNoTracking().Include(v => v.Sellers).Where(v => v.BuyerId == buyerId)
            .OrderByDescending(v => v.RequestedAt).ThenBy(v => v.Id).Skip(offset).Take(limit).ToListAsync(cancellationToken);
        return valuations.Select(ToView).ToList();
    }

    public async Task<PointPage> GetPointValuesAsync(string buyerId, Guid valuationId, int offset, int limit, CancellationToken cancellationToken)
    {
        RequireActor(buyerId);
        RequirePage(offset, limit);

        var valuation = await db.Valuations.AsNoTracking()
            .SingleOrDefaultAsync(v => v.Id == valuationId && v.BuyerId == buyerId, cancellationToken)
            ?? throw CatalogException.NotFound("valuation");
        if (valuation.Status != ValuationStatus.Completed)
        {
            throw new CatalogException(CatalogErrorKind.Conflict, $"valuation {valuationId} is {valuation.Status}, not completed");
        }

        if (valuation.PointsBlobId is null)
        {
            return new PointPage(0, offset, limit, []);
        }

        // Point values stay in their blob (fixed-size records): a page is one seek, whatever the valuation's size.
        await using var stream = blobs.OpenRead(valuation.PointsBlobId);
        var (total, items) = PointValueBlob.ReadPage(stream, offset, limit);
        return new PointPage(
            total,
            offset,
            limit,
            items.Select(p => new PointValueView(p.Ordinal, p.ListingId, p.Row, EstimateView.From(p.Value, p.StandardError))).ToList());
    }

    /// <summary>
    /// The rows of a completed valuation with the lowest values (the likeliest mislabelled or harmful), lowest first,
    /// ties by ordinal so the answer never depends on read order. Row numbers and values only: never row contents.
    /// </summary>
    public async Task<IReadOnlyList<PointValueView>> GetLowestPointValuesAsync(string buyerId, Guid valuationId, int count, CancellationToken cancellationToken)
    {
        if (count is < 1 or > MaxLowestPoints)
        {
            throw new CatalogException(CatalogErrorKind.Invalid, $"limit must be between 1 and {MaxLowestPoints}");
        }

        var first = await GetPointValuesAsync(buyerId, valuationId, 0, 1, cancellationToken);
        var pointsBlobId = await db.Valuations.Where(v => v.Id == valuationId).Select(v => v.PointsBlobId).SingleAsync(cancellationToken);
        if (first.Total == 0 || pointsBlobId is null)
        {
            return [];
        }

        return PointValueBlob.Lowest(() => blobs.OpenRead(pointsBlobId), count)
            .Select(p => new PointValueView(p.Ordinal, p.ListingId, p.Row, EstimateView.From(p.Value, p.StandardError))).ToList();
    }

    /// <summary>The values the seller's listings received in completed valuations, newest first (amounts and method only).</summary>
    public async Task<IReadOnlyList<ReceivedValueView>> ListReceivedValuesAsync(string sellerId, int offset, int limit, CancellationToken cancellationToken)
    {
        RequireActor(sellerId);
        RequirePage(offset, limit);
        var own = (await db.Listings.AsNoTracking().Where(l => l.SellerId == sellerId).Select(l => l.Id).ToListAsync(cancellationToken)).ToHashSet();
        var rows = await (
                from value in db.Set<ValuationSellerValue>().AsNoTracking()
                join valuation in db.Valuations.AsNoTracking() on value.ValuationId equals valuation.Id
                where value.SellerId == sellerId && valuation.Status == ValuationStatus.Completed
                orderby valuation.FinishedAt descending, valuation.Id
                select new { valuation.Id, valuation.Method, valuation.K, valuation.ListingIds, value.Points, value.Value, value.StandardError, valuation.FinishedAt })
            .Skip(offset).Take(limit).ToListAsync(cancellationToken);
        return rows.Select(r => new ReceivedValueView(
                r.Id, r.Method, r.K,
                r.ListingIds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Guid.Parse).Where(own.Contains).ToList(),
                r.Points, EstimateView.From(r.Value, r.StandardError), r.FinishedAt))
            .ToList();
    }

    /// <summary>
    /// Erases what the catalog holds for an account whose owner is deleting it (the gateway calls this after the export
    /// and the password check): a buyer's test tasks and valuations, a seller's drafts, deleted with their files when
    /// nothing else refers to them. A seller's listed datasets may have been bought, and a purchase keeps its right to
    /// download: they are withdrawn (hidden from everyone, name and description replaced) instead of deleted.
    /// </summary>
    public async Task<ErasureView> EraseAccountDataAsync(string actorId, CancellationToken cancellationToken)
    {
        RequireActor(actorId);
        var tasks = await db.TestTasks.Where(t => t.BuyerId == actorId).ToListAsync(cancellationToken);
        var valuations = await db.Valuations.Include(v => v.Sellers).Where(v => v.BuyerId == actorId).ToListAsync(cancellationToken);
        var listings = await db.Listings.Where(l => l.SellerId == actorId).ToListAsync(cancellationToken);
        var drafts = listings.Where(l => l.Status == ListingStatus.Draft).ToList();
        var withdrawn = listings.Where(l => l.Status == ListingStatus.Listed).ToList();
        var valuationIds = valuations.Select(v => v.Id).ToList();
        var candidates = tasks.Select(t => t.BlobId).Concat(valuations.Select(v => v.PointsBlobId)).Concat(drafts.Select(l => l.BlobId))
            .OfType<string>().ToHashSet(StringComparer.Ordinal);

        db.TestTasks.RemoveRange(tasks);
        db.Valuations.RemoveRange(valuations);
        db.Listings.RemoveRange(drafts);
        db.CallbackNotices.RemoveRange(await db.CallbackNotices.Where(n => valuationIds.Contains(n.ValuationId)).ToListAsync(cancellationToken));
        db.IdempotencyKeys.RemoveRange(await db.IdempotencyKeys.Where(k => k.ActorId == actorId).ToListAsync(cancellationToken));
        foreach (var listing in withdrawn)
        {
            listing.Status = ListingStatus.Withdrawn;
            listing.Name = "withdrawn listing";
            listing.Description = null;
        }

        await db.SaveChangesAsync(cancellationToken);

        // Content-addressed files can be shared (two accounts uploading the same bytes): only unreferenced ones go.
        var blobsDeleted = 0;
        foreach (var blobId in candidates)
        {
            var used = await db.TestTasks.AnyAsync(t => t.BlobId == blobId, cancellationToken)
                || await db.Listings.AnyAsync(l => l.BlobId == blobId, cancellationToken)
                || await db.Valuations.AnyAsync(v => v.PointsBlobId == blobId, cancellationToken);
            if (!used)
            {
                blobs.Delete(blobId);
                blobsDeleted++;
            }
        }

        return new ErasureView(drafts.Count, withdrawn.Count, tasks.Count, valuations.Count, blobsDeleted);
    }

    private async Task<(StagedBlob Staged, DatasetSummary Summary)> StageAndValidateAsync(
        UploadOptions upload, Stream content, int? expectedFeatures, CancellationToken cancellationToken)
    {
        StagedBlob staged;
        try
        {
            staged = await blobs.StageAsync(content, options.MaxUploadBytes, cancellationToken);
        }
        catch (BlobTooLargeException exception)
        {
            throw new CatalogException(CatalogErrorKind.TooLarge, exception.Message);
        }

        try
        {
            await using var file = File.OpenRead(staged.Path);
            var summary = DatasetReader.Validate(file, new DatasetReadOptions
            {
                SourceName = upload.FileName,
                Format = DatasetFormats.Parse(upload.Format),
                LabelColumn = upload.LabelColumn,
                ExpectedFeatures = expectedFeatures,
            });
            return (staged, summary);
        }
        catch (DatasetFormatException exception)
        {
            staged.Dispose();
            throw CatalogException.BadData(exception);
        }
        catch
        {
            staged.Dispose();
            throw;
        }
    }

    private static ValuationView ToView(ValuationRun v) => new(
        v.Id, v.BuyerId, v.TaskId, v.Method, v.TaskType, v.K,
        v.ListingIds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Guid.Parse).ToList(),
        v.Status, v.Error, v.TrainingPoints, v.TestPoints, v.CompletedTestPoints, v.TotalUtility, v.RequestedAt, v.StartedAt, v.FinishedAt,
        v.Sellers.OrderByDescending(s => s.Value).Select(s => new SellerValueView(s.SellerId, s.Points, EstimateView.From(s.Value, s.StandardError))).ToList(),
        v.CallbackUrl);

    private static void RequireActor(string actorId)
    {
        if (string.IsNullOrWhiteSpace(actorId))
        {
            throw new CatalogException(CatalogErrorKind.Unauthorized, "the request does not say who is acting");
        }

        if (!NameRules.IsActorId(actorId))
        {
            throw new CatalogException(CatalogErrorKind.Unauthorized,
                $"an actor id is 1 to {NameRules.MaxActorIdLength} characters of letters, digits and . _ - @ :");
        }
    }

    private static void RequirePage(int offset, int limit)
    {
        if (offset < 0 || limit < 1 || limit > MaxPageSize)
        {
            throw new CatalogException(CatalogErrorKind.Invalid, $"offset must be >= 0 and limit between 1 and {MaxPageSize}");
        }
    }

    /// <summary>What an Idempotency-Key was first used for.</summary>
    private static class Operations
    {
        public const string CreateListing = "create-listing";
        public const string PostTestTask = "post-test-task";
        public const string RequestValuation = "request-valuation";
        public const string UploadModel = "upload-model";
    }

    private async Task<Guid?> FindIdempotentAsync(string actorId, string? key, string operation, CancellationToken cancellationToken)
    {
        if (key is null)
        {
            return null;
        }

        if (!NameRules.IsIdempotencyKey(key))
        {
            throw new CatalogException(CatalogErrorKind.Invalid,
                $"Idempotency-Key must be 1 to {NameRules.MaxIdempotencyKeyLength} printable ASCII characters");
        }

        var record = await db.IdempotencyKeys.AsNoTracking().SingleOrDefaultAsync(r => r.ActorId == actorId && r.Key == key, cancellationToken);
        if (record is null)
        {
            return null;
        }

        if (record.Operation != operation)
        {
            throw new CatalogException(CatalogErrorKind.Conflict,
                $"this Idempotency-Key was already used for another kind of request ({record.Operation}); use a new key");
        }

        return record.ResourceId;
    }

    private void Remember(string actorId, string? key, string operation, Guid resourceId)
    {
        if (key is not null)
        {
            db.IdempotencyKeys.Add(new IdempotencyRecord { ActorId = actorId, Key = key, Operation = operation, ResourceId = resourceId, CreatedAt = DateTime.UtcNow });
        }
    }

    /// <summary>
    /// Commits the unit of work. When a concurrent request with the same key committed first, the key's unique
    /// index refuses this one; nothing of it is kept and the first request's resource id is returned instead.
    /// </summary>
    private async Task<Guid?> SaveIdempotentAsync(string actorId, string? key, string operation, CancellationToken cancellationToken)
    {
        try
        {
            await outbox.SaveAndSendAsync(cancellationToken);
            return null;
        }
        catch (DbUpdateException) when (key is not null)
        {
            db.ChangeTracker.Clear();
            return await FindIdempotentAsync(actorId, key, operation, cancellationToken) ?? throw new InvalidOperationException("the request could not be saved");
        }
    }

    private static async Task ValidateAsync<T>(IValidator<T> validator, T request, CancellationToken cancellationToken)
    {
        var result = await validator.ValidateAsync(request, cancellationToken);
        if (!result.IsValid)
        {
            throw new CatalogException(CatalogErrorKind.Invalid, "the request is not valid", new Dictionary<string, string[]>(result.ToDictionary()));
        }
    }
}
